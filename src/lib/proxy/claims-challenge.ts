import type { HttpResponseInit } from '@azure/functions';
import { claimsDigest, claimsFromChallengeParameter } from '../auth/claims-request';
import { loginUrl } from '../auth/login-url';
import type { Session } from '../auth/session-store';
import { problemResponse } from '../http/problem-response';

/** A `WWW-Authenticate` longer than this is not a challenge the app reads. */
const MAX_CHALLENGE_LENGTH = 4096;
/**
 * How long after a sign-in with a claims request the same claims, unmet again, are taken as the
 * API refusing whatever the user does, rather than as a new step-up (e.g. a Conditional Access
 * sign-in frequency that has run out). A step-up takes one sign-in; a second right after loops.
 */
export const CLAIMS_SIGN_IN_LOOP_WINDOW_MS = 10 * 60 * 1000;
/** The page the user comes back to after signing in again: the app's only page. */
const PAGE = '/';

/**
 * An API's claims challenge that a silent attempt with its claims did not meet: the IdP wants the
 * user (MSAL's InteractionRequiredAuthError), or the API refused the token got with them.
 */
export class ClaimsChallengeError extends Error {
  /** The challenge's claims request, canonical JSON (claims-request.ts). */
  readonly claims: string;

  constructor(claims: string, options?: ErrorOptions) {
    super('the API asked for claims that a silent token request did not get', options);
    this.name = 'ClaimsChallengeError';
    this.claims = claims;
  }
}

/**
 * The claims request of a claims challenge: a `Bearer` challenge with `error="insufficient_claims"`
 * and `claims="<base64 of a claims request>"`, as Entra's APIs send it (continuous access
 * evaluation, Conditional Access authentication context:
 * https://learn.microsoft.com/entra/identity-platform/claims-challenge "Claims challenge header
 * format"). Undefined for any other `WWW-Authenticate`, or claims that are not a claims request
 * the app passes on (claims-request.ts).
 */
export function claimsChallengeOf(wwwAuthenticate: string | undefined): string | undefined {
  if (wwwAuthenticate === undefined || wwwAuthenticate.length > MAX_CHALLENGE_LENGTH) {
    return undefined;
  }
  const match = /^\s*Bearer\s+(.*)$/is.exec(wwwAuthenticate);
  if (match === null) return undefined;
  const parameters = new Map<string, string>();
  // auth-param = token BWS "=" BWS ( token / quoted-string ), RFC 9110 §11.2; repeats: first wins.
  for (const [, name = '', quoted, token] of (match[1] ?? '').matchAll(
    /([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9!#$%&'*+.^_`|~-]+))/g,
  )) {
    const key = name.toLowerCase();
    if (!parameters.has(key)) parameters.set(key, quoted?.replace(/\\(.)/g, '$1') ?? token ?? '');
  }
  const claims = parameters.get('claims');
  if (parameters.get('error') !== 'insufficient_claims' || claims === undefined) return undefined;
  return claimsFromChallengeParameter(claims);
}

/**
 * The answer when getting a token for `claims` needs the user: 401 with a `loginUrl` whose sign-in
 * asks for those claims. Unless this session signed in with exactly these claims within
 * CLAIMS_SIGN_IN_LOOP_WINDOW_MS: that sign-in did not satisfy the API, so another would loop; the
 * answer is then a 401 that says so, without a `loginUrl`.
 */
export function claimsSignInResponse(
  claims: string,
  session: Pick<Session, 'signInClaimsDigest' | 'createdAt'>,
  apiName: string,
  now = Date.now(),
): HttpResponseInit {
  const justSignedInForThese =
    session.signInClaimsDigest === claimsDigest(claims) &&
    now - session.createdAt.getTime() < CLAIMS_SIGN_IN_LOOP_WINDOW_MS;
  if (justSignedInForThese) {
    return problemResponse({
      status: 401,
      title: 'The API keeps refusing',
      detail: `The API "${apiName}" still asks for more proof of sign-in (a claims challenge) right after you signed in to give it, so signing in again would not help. Try again later, or ask the API's owner.`,
    });
  }
  return problemResponse({
    status: 401,
    title: 'Sign-in required',
    detail: `The API "${apiName}" needs you to sign in again (for example with multi-factor authentication).`,
    extensions: { loginUrl: loginUrl(PAGE, claims) },
  });
}
