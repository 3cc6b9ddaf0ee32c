import type { HttpResponseInit } from '@azure/functions';
import { SECURITY_HEADERS } from './problem-response';

// The app's own small pages need nothing but their markup.
const PAGE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

export interface MessagePage {
  readonly status: number;
  readonly title: string;
  readonly message: string;
  readonly link: { readonly href: string; readonly text: string };
  readonly retryAfterSeconds?: number;
}

/** A plain page telling a person what happened and what to do next (e.g. "sign in again"). */
export function messagePageResponse(page: MessagePage): HttpResponseInit {
  const body = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(page.title)}</title></head>
<body>
<main>
<h1>${escapeHtml(page.title)}</h1>
<p>${escapeHtml(page.message)}</p>
<p><a href="${escapeHtml(page.link.href)}">${escapeHtml(page.link.text)}</a></p>
</main>
</body>
</html>
`;
  return {
    status: page.status,
    headers: {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': PAGE_CSP,
      ...(page.retryAfterSeconds === undefined
        ? {}
        : { 'Retry-After': String(page.retryAfterSeconds) }),
    },
    body,
  };
}
