import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { isJsonMediaType } from '../http/json-media-type';
import { problemResponse } from '../http/problem-response';

/** The methods the API's collection and item routes take; anything else gets 405 with `Allow`. */
const COLLECTION_METHODS = ['GET', 'POST'] as const;
const ITEM_METHODS = ['GET', 'PUT', 'PATCH', 'DELETE'] as const;

/** Ids are opaque to the proxy; this alphabet cannot form a dot segment, a slash or a scheme. */
const TODO_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function isTodoId(value: string): boolean {
  return TODO_ID.test(value);
}

/** Larger than any to-do the API accepts (1,000 characters), far smaller than a DoS payload. */
const MAX_BODY_BYTES = 16 * 1024;

export type TodoMethod = (typeof COLLECTION_METHODS)[number] | (typeof ITEM_METHODS)[number];

/** A validated call to forward: the item id (none for the collection) and the JSON body's text. */
export interface TodoCall {
  readonly method: TodoMethod;
  readonly id: string | undefined;
  readonly body: string | undefined;
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly response: HttpResponseInit };

function refuse(
  status: number,
  title: string,
  detail: string,
  headers: Record<string, string> = {},
): Parsed<never> {
  return { ok: false, response: problemResponse({ status, title, detail, headers }) };
}

/**
 * The method and id of a request to `/api/todos/{*path}`. The id comes from the route value, which
 * the host has already percent-decoded except `%2F`; anything outside the id alphabet is refused
 * here, so it never becomes a path segment of the upstream URL.
 */
function parseTodoTarget(
  request: HttpRequest,
): Parsed<{ method: TodoMethod; id: string | undefined }> {
  const raw = request.params.path;
  const id = raw === undefined || raw === '' ? undefined : raw;
  const allowed: readonly string[] = id === undefined ? COLLECTION_METHODS : ITEM_METHODS;
  if (!allowed.includes(request.method)) {
    return refuse(405, 'Method not allowed', `Use ${allowed.join(', ')} on this route.`, {
      Allow: allowed.join(', '),
    });
  }
  if (id !== undefined && !isTodoId(id)) {
    return refuse(400, 'Invalid to-do id', 'A to-do id is 1 to 128 letters, digits, "-" or "_".');
  }
  return { ok: true, value: { method: request.method as TodoMethod, id } };
}

/**
 * The JSON body of a write: 415 unless declared JSON, 413 past the limit, 400 unless it parses.
 * The text is forwarded as it came: serializing it again could overflow the stack on deep nesting.
 */
async function readJsonBody(request: HttpRequest): Promise<Parsed<string>> {
  if (!isJsonMediaType(request.headers.get('content-type'))) {
    return refuse(415, 'Unsupported media type', 'Send the body as application/json.');
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) return tooLarge();
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > MAX_BODY_BYTES) return tooLarge();
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    JSON.parse(text);
    return { ok: true, value: text };
  } catch {
    return refuse(400, 'Malformed JSON', 'The body is not valid UTF-8 JSON.');
  }
}

function tooLarge(): Parsed<never> {
  return refuse(413, 'Content too large', `The body must be at most ${MAX_BODY_BYTES} bytes.`);
}

/**
 * A write whose body came without `Content-Length` (`Transfer-Encoding: chunked`, which also wins
 * over a Content-Length sent beside it, RFC 9112 §6.3): the Functions host passes a body to the
 * worker only when Content-Length > 0 (GrpcMessageConversionExtensions.ToRpcHttp in
 * azure-functions-host), so this one arrived empty. It still passes the request's headers, which
 * say so.
 */
function lengthRequired(request: HttpRequest): Parsed<never> | undefined {
  if (request.headers.get('transfer-encoding') === null) return undefined;
  return refuse(411, 'Length required', 'Send the body with a Content-Length header.');
}

/** Reads a whole to-do call, or the response that refuses it; the body only for writes that carry one. */
export async function parseTodoCall(request: HttpRequest): Promise<Parsed<TodoCall>> {
  const target = parseTodoTarget(request);
  if (!target.ok) return target;
  const { method, id } = target.value;
  if (method === 'GET' || method === 'DELETE') {
    return { ok: true, value: { method, id, body: undefined } };
  }
  const unsized = lengthRequired(request);
  if (unsized) return unsized;
  const body = await readJsonBody(request);
  if (!body.ok) return body;
  return { ok: true, value: { method, id, body: body.value } };
}
