import type { HttpResponseInit } from '@azure/functions';
import { messagePageResponse } from '../web/html-page';
import { loginUrl } from './login-url';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The page for a sign-in started on a loopback address other than the app's own (127.0.0.1 where
 * REDIRECT_URI says localhost): the browser keeps the sign-in cookie per host, so the IdP's
 * redirect to REDIRECT_URI's host would arrive without it and fail as "not started in this
 * browser". Only between loopback names: in Azure a proxy may present another Host header than
 * the one the browser used, and a sign-in must not be refused for that.
 */
export function wrongHostPage(
  requestUrl: string,
  appOrigin: string,
  returnTo: string | null,
  claims?: string,
): HttpResponseInit | undefined {
  const requested = new URL(requestUrl);
  const app = new URL(appOrigin);
  if (
    requested.host === app.host ||
    !LOOPBACK_NAMES.has(requested.hostname) ||
    !LOOPBACK_NAMES.has(app.hostname)
  ) {
    return undefined;
  }
  return messagePageResponse({
    status: 400,
    title: `Sign in at ${app.origin}`,
    message:
      `This page was opened at ${requested.origin}, but the app signs in at ${app.origin} ` +
      `(its REDIRECT_URI). Browsers keep cookies per host, so a sign-in started here could not ` +
      `finish there. Open ${app.origin}/ and sign in from there.`,
    link: { href: `${app.origin}${loginUrl(returnTo, claims)}`, text: `Sign in at ${app.origin}` },
    // The page at this host could not sign in either.
    home: `${app.origin}/`,
  });
}
