import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import { canonicalClaimsRequest } from '../auth/claims-request';
import { expiredCookie, SESSION_COOKIE } from '../auth/cookies';
import { loginUrl } from '../auth/login-url';
import type { Session, SessionStore } from '../auth/session-store';
import { SignInRequiredError, UserInteractionRequiredError } from '../errors';
import { problemResponse } from '../http/problem-response';
import { ClaimsChallengeError, claimsSignInResponse } from './claims-challenge';

/** The page the user comes back to after signing in again: the app's only page. */
const PAGE = '/';

/** 401 with the URL that signs the user in again, never a redirect (the page follows it). */
export function signInRequired(detail: string, clearSessionCookie: boolean): HttpResponseInit {
  return {
    ...problemResponse({
      status: 401,
      title: 'Sign-in required',
      detail,
      extensions: { loginUrl: loginUrl(PAGE) },
    }),
    ...(clearSessionCookie ? { cookies: [expiredCookie(SESSION_COOKIE, 'Strict')] } : {}),
  };
}

/**
 * The answer when getting the user's token needs the user: 401 with a login URL. MFA or Conditional
 * Access (the refresh token is alive) keeps tokens and session, as signing in again on this device
 * satisfies it; with a claims challenge the API sent (or claims the IdP named), that sign-in asks
 * for those claims, and one that did already gets a 401 without a login URL (claims-challenge.ts);
 * a dead refresh token has had its tokens removed, and the session that pointed at them ends too
 * (if the store fails now, the next request finds no tokens and retries the clean-up).
 * Undefined for any other error.
 */
export async function signInNeededResponse(
  error: unknown,
  sessions: Pick<SessionStore, 'delete'>,
  session: Session,
  cookie: string | undefined,
  apiName: string,
  context: InvocationContext,
): Promise<HttpResponseInit | undefined> {
  const label = `api ${apiName}`;
  if (error instanceof ClaimsChallengeError) {
    context.warn(`${label}: the API's claims challenge needs the user to sign in`);
    return claimsSignInResponse(error.claims, session, apiName);
  }
  if (error instanceof UserInteractionRequiredError) {
    const claims = error.claims === undefined ? undefined : canonicalClaimsRequest(error.claims);
    if (claims !== undefined) return claimsSignInResponse(claims, session, apiName);
    return signInRequired('Sign in again to continue.', false);
  }
  if (error instanceof SignInRequiredError) {
    await sessions.delete(cookie).catch((deleteError: unknown) => {
      context.warn(`${label}: the session could not be deleted: ${String(deleteError)}`);
    });
    return signInRequired('Your sign-in has expired. Sign in again.', true);
  }
  return undefined;
}
