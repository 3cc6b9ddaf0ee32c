import { STATUS_CODES } from 'node:http';
import type {
  HttpHandler,
  HttpRequest,
  HttpResponseInit,
  InvocationContext,
} from '@azure/functions';
import type { AppConfig, DownstreamApi } from '../config';
import { expiredCookie, readCookie, SESSION_COOKIE } from '../auth/cookies';
import { dependencyFailure } from '../http/dependency-errors';
import {
  AdminConsentRequiredError,
  SignInRequiredError,
  UserInteractionRequiredError,
} from '../errors';
import { isJsonMediaType } from '../http/json-media-type';
import { loginUrl } from '../auth/login-url';
import { problemResponse, SECURITY_HEADERS } from '../http/problem-response';
import { sendWithToken } from './send-with-token';
import { canonicalClaimsRequest } from '../auth/claims-request';
import { ClaimsChallengeError, claimsSignInResponse } from './claims-challenge';
import { hasCsrfHeader, isSameOriginRequest } from '../http/request-checks';
import type { Session, SessionStore } from '../auth/session-store';
import {
  TodoListClient,
  TodoListTimeoutError,
  TodoListUnreachableError,
  type TodoListResponse,
} from './todo-list-client';
import { emitEvent } from '../telemetry/telemetry-events';
import { isTodoId, parseTodoCall, type TodoCall } from './todo-request';
import type { TokenService } from '../tokens/token-service';

/** What the proxy uses of the app's services. */
export interface TodoProxyServices {
  readonly config: AppConfig;
  readonly tokenService: Pick<TokenService, 'acquireToken'>;
  readonly sessions: Pick<SessionStore, 'resolve' | 'delete'>;
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

/** The page the user comes back to after signing in again: the app's only page. */
const PAGE = '/';
const PUBLIC_COLLECTION = '/api/todos';

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

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// A number of seconds or an HTTP date (RFC 9110 §10.2.3); anything else is not passed on.
export function safeRetryAfter(value: string | undefined): string | undefined {
  if (value === undefined || value.length > 64) return undefined;
  return /^\d{1,9}$/.test(value) || !Number.isNaN(Date.parse(value)) ? value : undefined;
}

/**
 * The API's `Location` for a created item, as this app's URL of that item; undefined (dropped)
 * when it points anywhere but one item of the configured collection.
 */
function publicLocation(location: string | undefined, client: TodoListClient): string | undefined {
  if (location === undefined) return undefined;
  const collection = new URL(client.urlFor(undefined));
  let target: URL;
  try {
    target = new URL(location, `${collection.href}/`);
  } catch {
    return undefined;
  }
  const prefix = `${collection.pathname}/`;
  if (target.origin !== collection.origin || !target.pathname.startsWith(prefix)) return undefined;
  const id = target.pathname.slice(prefix.length);
  return isTodoId(id) ? `${PUBLIC_COLLECTION}/${id}` : undefined;
}

/** The API's answer as the browser gets it: status and JSON body, and only the headers named here. */
function relay(upstream: TodoListResponse, client: TodoListClient): HttpResponseInit {
  const { status } = upstream;
  if (status >= 300 && status < 400) {
    return problemResponse({
      status: 502,
      title: 'Bad gateway',
      detail: 'The to-do list API answered with a redirect, which is not followed.',
    });
  }
  const retryAfter =
    status === 429 || status === 503 ? safeRetryAfter(upstream.retryAfter) : undefined;
  const passedOn: Record<string, string> =
    retryAfter === undefined ? {} : { 'Retry-After': retryAfter };
  const headers: Record<string, string> = { ...SECURITY_HEADERS, ...passedOn };
  const location = status === 201 ? publicLocation(upstream.location, client) : undefined;
  if (location !== undefined) headers.Location = location;

  const text = upstream.body.toString('utf8');
  const isJson = text !== '' && isJsonMediaType(upstream.contentType) && parsesAsJson(text);
  if (isJson) {
    const problem = upstream.contentType?.toLowerCase().startsWith('application/problem+json');
    headers['Content-Type'] = problem ? 'application/problem+json' : 'application/json';
    return { status, headers, body: text };
  }
  if (status < 400) {
    if (text === '') return { status, headers };
    return problemResponse({
      status: 502,
      title: 'Bad gateway',
      detail: 'The to-do list API answered with something other than JSON.',
    });
  }
  // Errors are always problem details, even when the API sent none.
  return problemResponse({
    status,
    title: STATUS_CODES[status] ?? 'Error',
    detail: 'The to-do list API refused the request.',
    headers: passedOn,
  });
}

/**
 * The `/api/todos` proxy. A request is refused without a session, token or API call unless it
 * carries `X-CSRF: 1` from this app's origin and a valid method, id and body; then it is forwarded
 * with the user's access token for the read scope (GET) or the read-write scope (writes).
 */
export function createTodoProxyHandler(
  services: TodoProxyServices,
  api: DownstreamApi,
  client = new TodoListClient({ endpoint: api.url, timeoutMs: api.timeoutMs }),
): HttpHandler {
  const { config, tokenService, sessions } = services;

  async function forward(call: TodoCall, session: Session): Promise<TodoListResponse> {
    const scopes = call.method === 'GET' ? api.readScopes : api.writeScopes;
    return sendWithToken(tokenService, session, scopes, (accessToken) =>
      client.send({ ...call, accessToken }),
    );
  }

  async function handle(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    if (!hasCsrfHeader(request) || !isSameOriginRequest(request, config.appOrigin)) {
      return problemResponse({
        status: 403,
        title: 'Forbidden',
        detail: 'API calls must come from this app’s page with the X-CSRF: 1 header.',
      });
    }
    const call = await parseTodoCall(request);
    if (!call.ok) return call.response;

    const cookie = readCookie(request, SESSION_COOKIE);
    const session = await sessions.resolve(cookie, { withTokenCache: true });
    if (session === undefined) {
      return signInRequired('Sign in to use your to-do list.', cookie !== undefined);
    }
    try {
      const upstream = await forward(call.value, session);
      if (upstream.status === 401) {
        context.warn('todos: the API refused a freshly acquired access token');
        return signInRequired('The to-do list API did not accept your sign-in.', false);
      }
      return relay(upstream, client);
    } catch (error) {
      const answer = await signInNeededResponse(
        error,
        sessions,
        session,
        cookie,
        api.name,
        context,
      );
      if (answer !== undefined) return answer;
      throw error;
    }
  }

  return async (request, context) => {
    try {
      return await handle(request, context);
    } catch (error) {
      return failure(error, context);
    }
  };
}

function failure(error: unknown, context: InvocationContext): HttpResponseInit {
  if (error instanceof AdminConsentRequiredError) {
    // No sign-in fixes this: the tenant's administrator must grant the app the API's permissions.
    context.error(
      "todos: the tenant has not granted admin consent for the app's API permissions (AADSTS65001); an administrator must grant it",
    );
    emitEvent({ event: 'DependencyFailed', dependency: 'identity_provider', error: error.name });
    return problemResponse({
      status: 403,
      title: 'Admin consent required',
      detail:
        "This app has not been granted access to the to-do list API in this tenant. An administrator must grant admin consent for the app's API permissions.",
    });
  }
  if (error instanceof TodoListTimeoutError) {
    emitEvent({ event: 'DependencyFailed', dependency: 'todo_list_api', error: error.name });
    return problemResponse({
      status: 504,
      title: 'Gateway timeout',
      detail: 'The to-do list API did not answer in time.',
    });
  }
  if (error instanceof TodoListUnreachableError) {
    emitEvent({
      event: 'DependencyFailed',
      dependency: 'todo_list_api',
      error: error.name,
      code: error.code,
    });
    return problemResponse({
      status: 502,
      title: 'Bad gateway',
      detail: 'The to-do list API could not be reached.',
    });
  }
  const dependency = dependencyFailure(error);
  if (dependency !== undefined) {
    context.warn(`todos: ${error instanceof Error ? error.message : String(error)}`);
    return problemResponse(dependency);
  }
  // Our own failure: the log gets the stack (never a token: the API client's errors carry none).
  context.error('todos: unexpected failure', error instanceof Error ? error.stack : error);
  return problemResponse({
    status: 500,
    title: 'Internal server error',
    detail: 'Something went wrong in the app.',
  });
}
