import type { HttpHandler } from '@azure/functions';
import type { DownstreamApi } from '../config';
import { problemResponse } from '../http/problem-response';
import { hasCsrfHeader, isSameOriginRequest } from '../http/request-checks';
import { createApiProxyHandler, type ApiProxyServices } from './api-proxy';

/** Every method the proxy answers (405 with `Allow` for the ones an API's path does not take). */
export const API_ROUTE_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
] as const;

/**
 * The one handler of `/api/{name}/{*path}`. One registration serves every API, `todos` too: the
 * Functions host tries routes in ordinal order of function names and takes the first match, so a
 * separate `api/todos/...` registration beside `api/{name}/...` would depend on how the functions
 * are named. Every configured API gets the same proxy under its own rules (`api-rules`: `todos`
 * keeps the ToDoList contract, ids and JSON bodies); any other name is 404 before any session or
 * token work.
 */
export function createApiRoutesHandler(
  services: ApiProxyServices & {
    readonly config: {
      readonly appOrigin: string;
      readonly downstreamApis: readonly DownstreamApi[];
    };
  },
): HttpHandler {
  const handlers = new Map(
    services.config.downstreamApis.map((api) => [api.name, createApiProxyHandler(services, api)]),
  );
  return async (request, context) => {
    if (!hasCsrfHeader(request) || !isSameOriginRequest(request, services.config.appOrigin)) {
      return problemResponse({
        status: 403,
        title: 'Forbidden',
        detail: 'API calls must come from this app’s page with the X-CSRF: 1 header.',
      });
    }
    // Route values match case-insensitively in the host; API names are lower-case.
    const handler = handlers.get((request.params.name ?? '').toLowerCase());
    if (handler === undefined) {
      return problemResponse({
        status: 404,
        title: 'Not found',
        detail: 'No API of that name is configured.',
      });
    }
    return handler(request, context);
  };
}
