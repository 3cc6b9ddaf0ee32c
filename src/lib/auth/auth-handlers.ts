import type { HttpHandler, HttpRequest, HttpResponseInit } from '@azure/functions';
import type { AppServices } from '../app-services';
import {
  expiredCookie,
  readCookie,
  readCookiesWithPrefix,
  SESSION_COOKIE,
  SIGN_IN_COOKIE_PREFIX,
} from './cookies';
import { dependencyFailure } from '../http/dependency-errors';
import { messagePageResponse } from '../web/html-page';
import { loginUrl } from './login-url';
import { jsonResponse, problemResponse, SECURITY_HEADERS } from '../http/problem-response';
import { constantTimeEquals, hasCsrfHeader, isSameOriginRequest } from '../http/request-checks';
import type { Session } from './session-store';
import type { SignInFailure } from './sign-in-failure';
import { claimsFromSignInParameter, MAX_CLAIMS_REQUEST_BYTES } from './claims-request';
import { SignInFailedError, SignInTooLargeError } from './sign-in-flow';
import { wrongHostPage } from './sign-in-host';
import { emitEvent } from '../telemetry/telemetry-events';

// A sign-out form carries one short field: anything bigger is not ours.
const MAX_FORM_BYTES = 4096;

const FAILURE_MESSAGES: Record<SignInFailure, string> = {
  idp_error: 'The sign-in was cancelled or refused by the identity provider.',
  missing_state:
    'This sign-in was not started in this browser, or it was already used. Start it again.',
  expired_state: 'This sign-in took too long and expired. Start it again.',
  state_mismatch: 'This sign-in does not match the one this browser started. Start it again.',
  missing_code: 'The identity provider did not return an authorization code.',
  code_rejected:
    'The identity provider did not accept this sign-in (it may have been used already).',
  client_credential_rejected:
    'The identity provider refused the credentials of this app, so no one can sign in until its operators fix them. Try again later.',
  admin_consent_missing:
    'This app has not been granted access in this tenant: an administrator must grant admin consent for its API permissions.',
};

// What each failure is: the browser's (400), or the app's configuration (502, 403).
const FAILURE_STATUS: Partial<Record<SignInFailure, number>> = {
  client_credential_rejected: 502,
  admin_consent_missing: 403,
};

function redirect(
  status: 302 | 303,
  location: string,
  cookies = [] as HttpResponseInit['cookies'],
) {
  return { status, headers: { ...SECURITY_HEADERS, Location: location }, cookies };
}

/** The page a browser sees when a dependency fails during sign-in; rethrows anything else. */
function dependencyPage(error: unknown, returnTo: string): HttpResponseInit {
  const failure = dependencyFailure(error);
  if (failure === undefined) throw error;
  return messagePageResponse({
    status: failure.status,
    title: 'Sign-in is unavailable right now',
    message: failure.detail,
    link: { href: loginUrl(returnTo), text: 'Try again' },
    ...(failure.retryAfterSeconds === undefined
      ? {}
      : { retryAfterSeconds: failure.retryAfterSeconds }),
  });
}

function dependencyProblem(error: unknown): HttpResponseInit {
  const failure = dependencyFailure(error);
  if (failure === undefined) throw error;
  return problemResponse(failure);
}

const BAD_CLAIMS = `claims must be the base64url (no padding) of a JSON object of objects (a claims request), at most ${MAX_CLAIMS_REQUEST_BYTES} bytes of JSON.`;

/**
 * `GET /auth/signin?returnTo=/path[&loginHint=name][&claims=base64url]`: to the IdP, with PKCE,
 * state and nonce; `claims` (an API's claims challenge, as the proxy's `loginUrl` carries it) is
 * checked here and becomes the authorize request's `claims` value, nothing else (400 if bad).
 */
export function createSignInHandler({ signInFlow, config }: AppServices): HttpHandler {
  return async (request) => {
    const returnTo = request.query.get('returnTo');
    const claimsParameter = request.query.get('claims');
    const claims =
      claimsParameter === null ? undefined : claimsFromSignInParameter(claimsParameter);
    if (claimsParameter !== null && claims === undefined) {
      return problemResponse({ status: 400, title: 'Invalid claims', detail: BAD_CLAIMS });
    }
    const wrongHost = wrongHostPage(request.url, config.appOrigin, returnTo, claims);
    if (wrongHost !== undefined) return wrongHost;
    try {
      const started = await signInFlow.start(
        returnTo,
        request.query.get('loginHint'),
        readCookiesWithPrefix(request, SIGN_IN_COOKIE_PREFIX),
        claims,
      );
      return redirect(302, started.authorizeUrl, started.cookies);
    } catch (error) {
      if (error instanceof SignInTooLargeError) {
        return problemResponse({
          status: 400,
          title: 'Sign-in request too large',
          detail:
            'returnTo and claims together are too long for the sign-in cookie; use a shorter returnTo.',
        });
      }
      return dependencyPage(error, returnTo ?? '/');
    }
  };
}

/** `GET /auth/redirect`: the IdP sends the browser back here with a code (or an error). */
export function createRedirectHandler({ signInFlow }: AppServices): HttpHandler {
  return async (request, context) => {
    try {
      const completed = await signInFlow.complete(
        {
          code: request.query.get('code'),
          state: request.query.get('state'),
          error: request.query.get('error'),
        },
        readCookiesWithPrefix(request, SIGN_IN_COOKIE_PREFIX),
        readCookie(request, SESSION_COOKIE),
      );
      emitEvent({ event: 'SignInCompleted' });
      return redirect(302, completed.returnTo, completed.cookies);
    } catch (error) {
      if (!(error instanceof SignInFailedError)) {
        const page = dependencyPage(error, '/');
        context.warn(`sign-in callback: ${(error as Error).message}`);
        return page;
      }
      emitEvent({
        event: 'SignInFailed',
        failure: error.failure,
        ...(error.idpError === undefined ? {} : { idpError: error.idpError }),
      });
      if (error.failure === 'client_credential_rejected') {
        context.error(
          "sign-in callback: the identity provider refused the app's client credential (invalid_client); fix CLIENT_SECRET: it is wrong or expired",
        );
      } else if (error.failure === 'admin_consent_missing') {
        context.error(
          "sign-in callback: the tenant has not granted admin consent for the app's API permissions (AADSTS65001); an administrator must grant it",
        );
      }
      const response = messagePageResponse({
        status: FAILURE_STATUS[error.failure] ?? 400,
        title: 'Sign-in did not complete',
        message: FAILURE_MESSAGES[error.failure] + (error.idpError ? ` (${error.idpError})` : ''),
        link: { href: loginUrl(error.returnTo), text: 'Sign in again' },
      });
      return { ...response, cookies: error.cookies };
    }
  };
}

/**
 * `GET /auth/me`: who is signed in, for the page; 401 with a login URL otherwise. `apis` names the
 * configured downstream APIs (each served as `/api/<name>`), so the page shows a section only for
 * an API it can call, without probing for one that is not there.
 */
export function createMeHandler({ sessions, config }: AppServices): HttpHandler {
  const apis = config.downstreamApis.map((api) => api.name);
  return async (request) => {
    const cookie = readCookie(request, SESSION_COOKIE);
    let session: Session | undefined;
    try {
      session = await sessions.resolve(cookie);
    } catch (error) {
      return dependencyProblem(error);
    }
    if (session === undefined) return notSignedIn(cookie);
    return jsonResponse(200, {
      name: session.name ?? session.username,
      username: session.username,
      expiresAt: session.expiresAt.toISOString(),
      idleExpiresAt: session.idleExpiresAt.toISOString(),
      signOut: { url: '/auth/signout', method: 'POST', csrfToken: session.csrfToken },
      apis,
    });
  };
}

async function formCsrfValue(request: HttpRequest): Promise<string | undefined> {
  const type = request.headers.get('content-type') ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return undefined;
  const length = Number(request.headers.get('content-length') ?? '0');
  if (!(length > 0 && length <= MAX_FORM_BYTES)) return undefined;
  const body = await request.text();
  if (body.length > MAX_FORM_BYTES) return undefined;
  return new URLSearchParams(body).get('csrf') ?? undefined;
}

/**
 * Deletes the user's tokens once no live session of theirs is left (with any ended session rows),
 * so signing out on one device leaves the others working.
 */
async function removeTokensIfLastSession(
  { sessions, tokenService }: AppServices,
  homeAccountId: string,
): Promise<void> {
  if ((await sessions.list(homeAccountId)).length > 0) return;
  await sessions.deleteAllFor(homeAccountId);
  await tokenService.removeUser(homeAccountId);
}

/** 401 with a login URL, clearing a session cookie that no longer names a live session. */
function notSignedIn(cookie: string | undefined): HttpResponseInit {
  return {
    ...problemResponse({
      status: 401,
      title: 'Not signed in',
      detail: 'Sign in to continue.',
      extensions: { loginUrl: loginUrl('/') },
    }),
    ...(cookie === undefined ? {} : { cookies: [expiredCookie(SESSION_COOKIE, 'Strict')] }),
  };
}

/**
 * `POST /auth/signout[?everywhere=1]`: ends this session (with `everywhere=1`, every session of
 * the user) and the user's tokens when no session of theirs is left, then sends the browser to the
 * IdP to end its session there too. Needs the `X-CSRF: 1` header or, for a plain form, the
 * session's CSRF value, so no other site can sign the user out. Without a live session it only
 * clears the cookies: a request that is not signed in writes nothing.
 */
export function createSignOutHandler(services: AppServices): HttpHandler {
  const { sessions, tokenService, authorityMetadata, config } = services;
  return async (request, context) => {
    const cookie = readCookie(request, SESSION_COOKIE);
    try {
      const session = await sessions.resolve(cookie);
      const sameOrigin = isSameOriginRequest(request, config.appOrigin);
      const formValue = hasCsrfHeader(request) ? undefined : await formCsrfValue(request);
      const proven =
        sameOrigin &&
        (hasCsrfHeader(request) ||
          (session !== undefined &&
            formValue !== undefined &&
            constantTimeEquals(formValue, session.csrfToken)));
      if (!proven) {
        return problemResponse({
          status: 403,
          title: 'Forbidden',
          detail: "Sign-out needs the X-CSRF header or the session's CSRF value.",
        });
      }
      if (session !== undefined) {
        if (request.query.get('everywhere') === '1') {
          await sessions.deleteAllFor(session.homeAccountId);
          await tokenService.removeUser(session.homeAccountId);
        } else {
          await sessions.delete(cookie);
          await removeTokensIfLastSession(services, session.homeAccountId);
        }
        emitEvent({ event: 'SignedOut' });
      }
      const cleared = [
        expiredCookie(SESSION_COOKIE, 'Strict'),
        ...[...readCookiesWithPrefix(request, SIGN_IN_COOKIE_PREFIX).keys()].map((name) =>
          expiredCookie(name, 'Lax'),
        ),
      ];
      let endSessionEndpoint: string;
      try {
        endSessionEndpoint = (await authorityMetadata.get()).endSessionEndpoint;
      } catch {
        // Signed out here already; the IdP's own session will end at its next sign-out.
        context.warn('sign-out: the IdP is unavailable, skipping its end-session step');
        return redirect(303, config.postLogoutRedirectUri, cleared);
      }
      const endSession = new URL(endSessionEndpoint);
      endSession.searchParams.set('post_logout_redirect_uri', config.postLogoutRedirectUri);
      endSession.searchParams.set('client_id', config.clientId);
      if (session?.loginHint !== undefined) {
        endSession.searchParams.set('logout_hint', session.loginHint);
      }
      return redirect(303, endSession.href, cleared);
    } catch (error) {
      return dependencyProblem(error);
    }
  };
}

/** `GET /auth/sessions`: the signed-in user's live sessions, this one marked `current`. */
export function createListSessionsHandler({ sessions }: AppServices): HttpHandler {
  return async (request) => {
    const cookie = readCookie(request, SESSION_COOKIE);
    try {
      const session = await sessions.resolve(cookie);
      if (session === undefined) return notSignedIn(cookie);
      const live = await sessions.list(session.homeAccountId);
      return jsonResponse(200, {
        sessions: live.map((entry) => ({
          id: entry.id,
          createdAt: entry.createdAt.toISOString(),
          lastUsedAt: entry.lastUsedAt.toISOString(),
          expiresAt: entry.expiresAt.toISOString(),
          idleExpiresAt: entry.idleExpiresAt.toISOString(),
          current: entry.id === session.id,
        })),
      });
    } catch (error) {
      return dependencyProblem(error);
    }
  };
}

/**
 * `DELETE /auth/sessions/{id}` (`X-CSRF: 1`): ends one session of the signed-in user, 204; this
 * one too (then as sign-out without the IdP step: the cookie is cleared). The user's tokens go
 * with their last session. 404 for an id that is not one of this user's live sessions.
 */
export function createEndSessionHandler(services: AppServices): HttpHandler {
  const { sessions, config } = services;
  return async (request) => {
    if (!hasCsrfHeader(request) || !isSameOriginRequest(request, config.appOrigin)) {
      return problemResponse({
        status: 403,
        title: 'Forbidden',
        detail: 'Ending a session needs the X-CSRF header from this app.',
      });
    }
    const cookie = readCookie(request, SESSION_COOKIE);
    try {
      const session = await sessions.resolve(cookie);
      if (session === undefined) return notSignedIn(cookie);
      const id = request.params.id ?? '';
      const current = id === session.id;
      if (current) await sessions.delete(cookie);
      else if (!(await sessions.end(session.homeAccountId, id))) {
        return problemResponse({
          status: 404,
          title: 'Not found',
          detail: 'You have no session with this id.',
        });
      }
      await removeTokensIfLastSession(services, session.homeAccountId);
      return {
        status: 204,
        headers: { ...SECURITY_HEADERS },
        ...(current ? { cookies: [expiredCookie(SESSION_COOKIE, 'Strict')] } : {}),
      };
    } catch (error) {
      return dependencyProblem(error);
    }
  };
}
