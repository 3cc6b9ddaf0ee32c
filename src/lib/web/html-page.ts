import type { HttpResponseInit } from '@azure/functions';
import { SECURITY_HEADERS } from '../http/problem-response';

// The app's own small pages load the page's stylesheet and icon from this origin, and nothing else:
// no script, no inline style, no form.
const PAGE_CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
/** The page the app serves at its root, which every message page links back to. */
const HOME = '/';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

export interface MessagePage {
  readonly status: number;
  readonly title: string;
  readonly message: string;
  readonly link: { readonly href: string; readonly text: string };
  readonly retryAfterSeconds?: number;
  /** Where "Back to the to-do list" goes: the app's root on this host unless given. */
  readonly home?: string;
}

/**
 * A page telling a person what happened and what to do next (e.g. "sign in again"), styled with
 * the page's own stylesheet (`src/web/app.css`), with a way back to the to-do list. Every message
 * goes through this one template, so they all look the same.
 */
export function messagePageResponse(page: MessagePage): HttpResponseInit {
  const homeHref = page.home ?? HOME;
  const home =
    page.link.href === homeHref
      ? ''
      : `\n<a href="${escapeHtml(homeHref)}">Back to the to-do list</a>`;
  const body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)} · To-do list</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<header class="bar"><a class="brand" href="${escapeHtml(homeHref)}">To-do list</a></header>
<main class="message-page">
<h1>${escapeHtml(page.title)}</h1>
<p>${escapeHtml(page.message)}</p>
<p class="links">
<a class="button" href="${escapeHtml(page.link.href)}">${escapeHtml(page.link.text)}</a>${home}
</p>
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
