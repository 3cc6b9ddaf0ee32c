import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { isJsonMediaType } from '../http/json-media-type';
import { problemResponse } from '../http/problem-response';
import type { ApiRequest } from './api-client';
import { parseApiTarget, rawQueryOf } from './api-path';
import { methodsAt, type ApiMethod, type ApiRules } from './api-rules';

/** The request headers a page's call may pass on; every other one (Cookie, Authorization, Host, hop-by-hop, …) stays here. */
const FORWARDED_REQUEST_HEADERS = [
  'accept',
  'accept-language',
  'content-type',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'prefer',
  'traceparent',
  'tracestate',
] as const;

export const READ_METHODS: ReadonlySet<ApiMethod> = new Set(['GET', 'HEAD']);
/** The writes that must carry a body where the API takes JSON bodies (a DELETE may). */
const BODY_METHODS: ReadonlySet<ApiMethod> = new Set(['POST', 'PUT', 'PATCH']);

/** A checked call, all but the token: what the API gets of the page's request. */
export type ApiCall = Omit<ApiRequest, 'accessToken'>;

type Checked<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly response: HttpResponseInit };

function refuse(
  status: number,
  title: string,
  detail: string,
  headers: Record<string, string> = {},
): Checked<never> {
  return { ok: false, response: problemResponse({ status, title, detail, headers }) };
}

function forwardedHeaders(
  request: HttpRequest,
  rules: ApiRules,
  body: Buffer | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = request.headers.get(name);
    // A header value with a line break or NUL could never have come from a real HTTP parser.
    if (value !== null && !/[\r\n\0]/.test(value)) headers[name] = value;
  }
  if (rules.jsonBodies) {
    // The body was checked to be UTF-8 JSON, whatever JSON media type declared it.
    headers.accept = 'application/json';
    delete headers['content-type'];
    if (body !== undefined) headers['content-type'] = 'application/json';
  }
  return headers;
}

function parsesAsUtf8Json(bytes: Buffer): boolean {
  try {
    // Only checked, never re-serialized: that could overflow the stack on deep nesting.
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    return true;
  } catch {
    return false;
  }
}

/**
 * A write's body: 411 when it came chunked (the Functions host passes a body only with a
 * `Content-Length` > 0, GrpcMessageConversionExtensions.ToRpcHttp in azure-functions-host, so it
 * arrived empty; `Transfer-Encoding` also wins over a Content-Length sent beside it, RFC 9112
 * §6.3), 413 past the API's limit, then its JSON rule; else the bytes as they came. Reads send no
 * body.
 */
async function readBody(
  request: HttpRequest,
  method: ApiMethod,
  rules: ApiRules,
): Promise<Checked<Buffer | undefined>> {
  if (READ_METHODS.has(method)) return { ok: true, value: undefined };
  if (request.headers.get('transfer-encoding') !== null) {
    return refuse(411, 'Length required', 'Send the body with a Content-Length header.');
  }
  const tooLarge = () =>
    refuse(413, 'Content too large', `The body must be at most ${rules.maxBodyBytes} bytes.`);
  if (Number(request.headers.get('content-length') ?? '0') > rules.maxBodyBytes) return tooLarge();
  const body = Buffer.from(await request.arrayBuffer());
  if (body.length > rules.maxBodyBytes) return tooLarge();
  if (rules.jsonBodies && (body.length > 0 || BODY_METHODS.has(method))) {
    if (!isJsonMediaType(request.headers.get('content-type'))) {
      return refuse(415, 'Unsupported media type', 'Send the body as application/json.');
    }
    if (!parsesAsUtf8Json(body)) {
      return refuse(400, 'Malformed JSON', 'The body is not valid UTF-8 JSON.');
    }
  }
  return { ok: true, value: body.length === 0 ? undefined : body };
}

/**
 * The page's call to `/api/<name>[/<path>]` as the API's rules let it through, or the 4xx that
 * refuses it: the path (400), the method at that path (405 with `Allow`), the body (411, 413, 415,
 * 400). Nothing here reads a session or a token.
 */
export async function parseApiCall(
  request: HttpRequest,
  rules: ApiRules,
): Promise<Checked<ApiCall>> {
  const target = parseApiTarget(
    request.params.path,
    rules.forwardsQuery ? rawQueryOf(request) : '',
  );
  if (!target.ok) return refuse(400, 'Invalid API path', target.detail);
  const resource = methodsAt(rules, target.segments);
  if (!resource.ok) return refuse(400, 'Invalid API path', resource.detail);
  const { methods } = resource;
  const method = request.method.toUpperCase() as ApiMethod;
  if (!methods.includes(method)) {
    return refuse(405, 'Method not allowed', `Use ${methods.join(', ')} on this route.`, {
      Allow: methods.join(', '),
    });
  }
  const body = await readBody(request, method, rules);
  if (!body.ok) return body;
  const headers = forwardedHeaders(request, rules, body.value);
  return { ok: true, value: { method, target: target.target, headers, body: body.value } };
}
