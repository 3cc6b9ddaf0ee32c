import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { DownstreamApi } from '../config';
import { readCookie, SESSION_COOKIE } from '../auth/cookies';
import type { Session, SessionStore } from '../auth/session-store';
import { AdminConsentRequiredError } from '../errors';
import { dependencyFailure } from '../http/dependency-errors';
import { problemResponse } from '../http/problem-response';
import { emitEvent } from '../telemetry/telemetry-events';
import type { TokenService } from '../tokens/token-service';
import { relayAnswer } from './api-answer';
import { ApiClient, ApiTimeoutError, ApiUnreachableError, type ApiResponse } from './api-client';
import { parseApiCall, READ_METHODS, type ApiCall } from './api-request';
import { rulesOf, sentenceStart, type ApiRules } from './api-rules';
import { sendWithToken } from './send-with-token';
import { signInNeededResponse, signInRequired } from './sign-in-needed';

/** What the proxy uses of the app's services. */
export interface ApiProxyServices {
  readonly tokenService: Pick<TokenService, 'acquireToken'>;
  readonly sessions: Pick<SessionStore, 'resolve' | 'delete'>;
}

/**
 * `/api/<name>[/<path>]` for one configured API, `todos` included: checked before any session or
 * token work (CSRF header and origin by the router, then the API's rules for path, method and
 * body), then forwarded with a token for that API's read scopes (GET, HEAD) or write scopes (the
 * rest), and nothing else of the incoming request but the allow-listed headers.
 */
export function createApiProxyHandler(
  services: ApiProxyServices,
  api: DownstreamApi,
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  const { tokenService, sessions } = services;
  const rules = rulesOf(api);
  const client = new ApiClient({ ...api, maxResponseBytes: rules.maxAnswerBytes });
  const label = `api ${api.name}`;

  async function forward(call: ApiCall, session: Session): Promise<ApiResponse> {
    const scopes = READ_METHODS.has(call.method) ? api.readScopes : api.writeScopes;
    return sendWithToken(tokenService, session, scopes, (accessToken) =>
      client.send({ ...call, accessToken }),
    );
  }

  async function handle(
    request: HttpRequest,
    context: InvocationContext,
  ): Promise<HttpResponseInit> {
    const call = await parseApiCall(request, rules);
    if (!call.ok) return call.response;

    const cookie = readCookie(request, SESSION_COOKIE);
    const session = await sessions.resolve(cookie, { withTokenCache: true });
    if (session === undefined) {
      return signInRequired(`Sign in to use ${rules.label}.`, cookie !== undefined);
    }
    try {
      const upstream = await forward(call.value, session);
      if (upstream.status === 401) {
        context.warn(`${label}: the API refused a freshly acquired access token`);
        return signInRequired(`${sentenceStart(rules.label)} did not accept your sign-in.`, false);
      }
      return relayAnswer(upstream, api, rules, call.value.method);
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
      return failure(error, api, rules, context);
    }
  };
}

function failure(
  error: unknown,
  api: DownstreamApi,
  rules: ApiRules,
  context: InvocationContext,
): HttpResponseInit {
  const label = `api ${api.name}`;
  if (error instanceof AdminConsentRequiredError) {
    // No sign-in fixes this: the tenant's administrator must grant the app this API's permissions.
    context.error(
      `${label}: the tenant has not granted admin consent for the app's permissions on this API (AADSTS65001); an administrator must grant it`,
    );
    emitEvent({ event: 'DependencyFailed', dependency: 'identity_provider', error: error.name });
    return problemResponse({
      status: 403,
      title: 'Admin consent required',
      detail: `This app has not been granted access to ${rules.label} in this tenant. An administrator must grant admin consent for the app's API permissions.`,
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
      detail: `${sentenceStart(rules.label)} did not answer in time.`,
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
      detail: `${sentenceStart(rules.label)} could not be reached.`,
    });
  }
  const dependency = dependencyFailure(error);
  if (dependency !== undefined) {
    context.warn(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    return problemResponse(dependency);
  }
  // Our own failure: the log gets the stack (never a token: the API client's errors carry none).
  context.error(`${label}: unexpected failure`, error instanceof Error ? error.stack : error);
  return problemResponse({
    status: 500,
    title: 'Internal server error',
    detail: 'Something went wrong in the app.',
  });
}
