import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { DownstreamApi } from '../config';
import { readCookie, SESSION_COOKIE } from '../auth/cookies';
import { dependencyFailure } from '../http/dependency-errors';
import { AdminConsentRequiredError } from '../errors';
import { problemResponse, SECURITY_HEADERS } from '../http/problem-response';
import { emitEvent } from '../telemetry/telemetry-events';
import {
  safeRetryAfter,
  signInNeededResponse,
  signInRequired,
  type TodoProxyServices,
} from './todo-proxy';
import type { Session } from '../auth/session-store';
import {
  API_METHODS,
  ApiClient,
  ApiTimeoutError,
  ApiUnreachableError,
  FORWARDED_REQUEST_HEADERS,
  RELAYED_RESPONSE_HEADERS,
  type ApiMethod,
  type ApiRequest,
  type ApiResponse,
} from './api-client';
import { parseApiTarget, rawQueryOf } from './api-path';
import { sendWithToken } from './send-with-token';

/** The largest request body passed on (DESIGN.md "Downstream APIs"). */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

const READ_METHODS: ReadonlySet<ApiMethod> = new Set(['GET', 'HEAD']);

type Checked<T> = { ok: true; value: T } | { ok: false; response: HttpResponseInit };

function refuse(
  status: number,
  title: string,
  detail: string,
  headers: Record<string, string> = {},
) {
  return { ok: false as const, response: problemResponse({ status, title, detail, headers }) };
}

function forwardedHeaders(request: HttpRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers.get(name);
    // A header value with a line break or NUL could never have come from a real HTTP parser.
    if (value !== null && !/[\r\n\0]/.test(value)) headers[name] = value;
  }
  return headers;
}

/**
 * A write's body: 411 when it came chunked (the Functions host passes a body only with a
 * `Content-Length` > 0, GrpcMessageConversionExtensions.ToRpcHttp in azure-functions-host, so it
 * arrived empty), 413 past the limit, else the bytes as they came. Reads send no body.
 */
async function readBody(
  request: HttpRequest,
  method: ApiMethod,
): Promise<Checked<Buffer | undefined>> {
  if (READ_METHODS.has(method)) return { ok: true, value: undefined };
  if (request.headers.get('transfer-encoding') !== null) {
    return refuse(411, 'Length required', 'Send the body with a Content-Length header.');
  }
  const tooLarge = () =>
    refuse(413, 'Content too large', `The body must be at most ${MAX_REQUEST_BODY_BYTES} bytes.`);
  if (Number(request.headers.get('content-length') ?? '0') > MAX_REQUEST_BODY_BYTES)
    return tooLarge();
  const body = Buffer.from(await request.arrayBuffer());
  if (body.length > MAX_REQUEST_BODY_BYTES) return tooLarge();
  return { ok: true, value: body.length === 0 ? undefined : body };
}

/**
 * The API's `Location` as this app's URL (`/api/<name>/...`) when it points under the API's URL;
 * undefined (dropped) when it points anywhere else.
 */
function publicLocation(location: string | undefined, api: DownstreamApi): string | undefined {
  if (location === undefined) return undefined;
  const base = new URL(`${api.url}/`);
  let target: URL;
  try {
    target = new URL(location, base);
  } catch {
    return undefined;
  }
  if (target.origin !== base.origin || !target.pathname.startsWith(base.pathname)) return undefined;
  const rest = target.pathname.slice(base.pathname.length);
  return `/api/${api.name}${rest === '' ? '' : `/${rest}`}${target.search}`;
}

/** The API's answer as the browser gets it: status and body, and only the allow-listed headers. */
function relay(upstream: ApiResponse, api: DownstreamApi, method: ApiMethod): HttpResponseInit {
  const { status } = upstream;
  if (status >= 300 && status < 400 && status !== 304) {
    return problemResponse({
      status: 502,
      title: 'Bad gateway',
      detail: `The API "${api.name}" answered with a redirect, which is not followed.`,
    });
  }
  const headers: Record<string, string> = { ...SECURITY_HEADERS };
  for (const name of RELAYED_RESPONSE_HEADERS) {
    const value = upstream.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  if (status === 429 || status === 503) {
    const retryAfter = safeRetryAfter(upstream.headers['retry-after']);
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
  }
  const location = publicLocation(upstream.headers.location, api);
  if (location !== undefined) headers.location = location;
  // The page's own policy stays: the API's content must not run or be framed under this origin.
  const hasBody = method !== 'HEAD' && status !== 204 && status !== 304 && upstream.body.length > 0;
  return { status, headers, ...(hasBody ? { body: upstream.body } : {}) };
}

/**
 * `/api/<name>[/<path>]` for any configured API but `todos`: checked before any session or token
 * work (CSRF header and origin by the router, then method, path, query and body), then forwarded
 * with a token for that API's read scopes (GET, HEAD) or write scopes (the rest), and nothing else
 * of the incoming request but the allow-listed headers.
 */
export function createApiProxyHandler(
  services: TodoProxyServices,
  api: DownstreamApi,
  client = new ApiClient(api),
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  const { tokenService, sessions } = services;

  async function forward(
    call: Omit<ApiRequest, 'accessToken'>,
    session: Session,
  ): Promise<ApiResponse> {
    const scopes = READ_METHODS.has(call.method) ? api.readScopes : api.writeScopes;
    return sendWithToken(tokenService, session, scopes, (accessToken) =>
      client.send({ ...call, accessToken }),
    );
  }

  async function handle(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    const method = request.method.toUpperCase() as ApiMethod;
    if (!API_METHODS.includes(method)) {
      return problemResponse({
        status: 405,
        title: 'Method not allowed',
        detail: `Use ${API_METHODS.join(', ')} on this route.`,
        headers: { Allow: API_METHODS.join(', ') },
      });
    }
    const target = parseApiTarget(request.params.path, rawQueryOf(request));
    if (!target.ok) {
      return problemResponse({ status: 400, title: 'Invalid API path', detail: target.detail });
    }
    const body = await readBody(request, method);
    if (!body.ok) return body.response;

    const cookie = readCookie(request, SESSION_COOKIE);
    const session = await sessions.resolve(cookie, { withTokenCache: true });
    if (session === undefined) {
      return signInRequired(`Sign in to use ${api.name}.`, cookie !== undefined);
    }
    const call: Omit<ApiRequest, 'accessToken'> = {
      method,
      target: target.target,
      headers: forwardedHeaders(request),
      body: body.value,
    };
    try {
      const upstream = await forward(call, session);
      if (upstream.status === 401) {
        context.warn(`api ${api.name}: the API refused a freshly acquired access token`);
        return signInRequired(`The API "${api.name}" did not accept your sign-in.`, false);
      }
      return relay(upstream, api, method);
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
      return failure(error, api, context);
    }
  };
}

function failure(error: unknown, api: DownstreamApi, context: InvocationContext): HttpResponseInit {
  if (error instanceof AdminConsentRequiredError) {
    // No sign-in fixes this: the tenant's administrator must grant the app this API's permissions.
    context.error(
      `api ${api.name}: the tenant has not granted admin consent for the app's permissions on this API (AADSTS65001); an administrator must grant it`,
    );
    emitEvent({ event: 'DependencyFailed', dependency: 'identity_provider', error: error.name });
    return problemResponse({
      status: 403,
      title: 'Admin consent required',
      detail: `This app has not been granted access to the API "${api.name}" in this tenant. An administrator must grant admin consent for the app's API permissions.`,
    });
  }
  if (error instanceof ApiTimeoutError) {
    emitEvent({
      event: 'DependencyFailed',
      dependency: 'downstream_api',
      api: api.name,
      error: error.name,
    });
    return problemResponse({
      status: 504,
      title: 'Gateway timeout',
      detail: `The API "${api.name}" did not answer in time.`,
    });
  }
  if (error instanceof ApiUnreachableError) {
    emitEvent({
      event: 'DependencyFailed',
      dependency: 'downstream_api',
      api: api.name,
      error: error.name,
      code: error.code,
    });
    return problemResponse({
      status: 502,
      title: 'Bad gateway',
      detail: `The API "${api.name}" could not be reached.`,
    });
  }
  const dependency = dependencyFailure(error);
  if (dependency !== undefined) {
    context.warn(`api ${api.name}: ${error instanceof Error ? error.message : String(error)}`);
    return problemResponse(dependency);
  }
  context.error(
    `api ${api.name}: unexpected failure`,
    error instanceof Error ? error.stack : error,
  );
  return problemResponse({
    status: 500,
    title: 'Internal server error',
    detail: 'Something went wrong in the app.',
  });
}
