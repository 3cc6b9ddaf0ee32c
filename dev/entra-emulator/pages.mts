import { hash } from 'node:crypto';
import type { KoaContext } from 'oidc-provider';
import { displayName, type EmulatorUser } from './users.mts';

/** An HTML page and the Content-Security-Policy it is served with. */
export interface Page {
  html: string;
  contentSecurityPolicy: string;
}

const style = `
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f3f3f3; color: #1b1b1b; }
main { max-width: 26rem; margin: 3rem auto; padding: 2rem; background: #fff; border-radius: 4px; }
h1 { font-size: 1.5rem; margin-top: 0; }
fieldset { border: 0; margin: 0 0 1rem; padding: 0; }
legend { margin-bottom: .5rem; }
button { display: block; width: 100%; margin: .5rem 0; padding: .75rem 1rem; font: inherit;
  text-align: left; border: 1px solid #8a8886; border-radius: 2px; background: #fff; cursor: pointer; }
button:hover { background: #f3f2f1; }
button:focus-visible { outline: 3px solid #0067b8; outline-offset: 2px; }
.account small { display: block; color: #605e5c; }
.secondary { text-align: center; }
`;

// No script at all, and the one inline style allowed by its hash.
const contentSecurityPolicy = [
  "default-src 'none'",
  `style-src '${`sha256-${hash('sha256', style, 'base64')}`}'`,
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

function escape(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (character) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character] ??
      character,
  );
}

function layout(title: string, body: string): Page {
  return {
    contentSecurityPolicy,
    html: `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · Entra External ID emulator</title>
<style>${style}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`,
  };
}

/** The sign-in page: one button per test user, and Cancel. Both are plain form posts. */
export function signInPage(options: {
  action: string;
  cancelAction: string;
  clientId: string;
  users: readonly EmulatorUser[];
}): Page {
  const accounts = options.users
    .map(
      (user, index) =>
        `<button type="submit" name="oid" value="${escape(user.oid)}" class="account"${index === 0 ? ' autofocus' : ''}>` +
        `${escape(user.name ?? displayName(user))}<small>${escape(displayName(user))}</small></button>`,
    )
    .join('\n');
  return layout(
    'Sign in',
    `<h1>Sign in</h1>
<p>Application <code>${escape(options.clientId)}</code> asks you to sign in.</p>
<form method="post" action="${escape(options.action)}">
<fieldset>
<legend>Pick a test user</legend>
${accounts}
</fieldset>
</form>
<form method="post" action="${escape(options.cancelAction)}">
<button type="submit" class="secondary">Cancel</button>
</form>`,
  );
}

export function signedOutPage(): Page {
  return layout('Signed out', '<h1>You signed out</h1>\n<p>You can close this window.</p>');
}

/**
 * Entra's "Need admin approval" page: the app asks for permissions no administrator granted, and
 * the user cannot grant them. Its one link returns to the app with access_denied (AADSTS65004),
 * as Entra's "Return to the application without granting consent" does
 * (https://learn.microsoft.com/entra/identity/enterprise-apps/configure-admin-consent-workflow,
 * https://learn.microsoft.com/entra/identity-platform/application-consent-experience).
 */
export function adminApprovalPage(clientId: string, returnUrl: string | undefined): Page {
  return layout(
    'Need admin approval',
    `<h1>Need admin approval</h1>
<p>Application <code>${escape(clientId)}</code> needs permission to access resources in your organization that only an admin can grant. Ask an admin to grant permission to this app before you can use it.</p>
<p><small>AADSTS90094: The grant requires admin permission.</small></p>
${returnUrl === undefined ? '' : `<p><a href="${escape(returnUrl)}">Return to the application without granting consent</a></p>`}`,
  );
}

export function errorPage(error: string, description: string | undefined): Page {
  return layout(
    'Error',
    `<h1>Sorry, sign-in failed</h1>
<p><strong>${escape(error)}</strong></p>
${description ? `<p>${escape(description)}</p>` : ''}`,
  );
}

export function respondWithPage(ctx: KoaContext, page: Page, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', page.contentSecurityPolicy);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = page.html;
}
