import { STATUS_CODES } from 'node:http';
import type { HttpResponseInit } from '@azure/functions';
import type { DownstreamApi } from '../config';
import { isJsonMediaType } from '../http/json-media-type';
import { problemResponse, SECURITY_HEADERS } from '../http/problem-response';
import type { ApiResponse } from './api-client';
import { encodedPath, segmentsProblem } from './api-path';
import { methodsAt, sentenceStart, type ApiMethod, type ApiRules } from './api-rules';

/** The answer headers passed on as they came (as named here); `Retry-After` and `Location` are judged below. */
const RELAYED_RESPONSE_HEADERS = [
  'Content-Type',
  'Content-Language',
  'Content-Disposition',
  'ETag',
  'Last-Modified',
] as const;

// A number of seconds or an HTTP date (RFC 9110 §10.2.3); anything else is not passed on.
function safeRetryAfter(value: string | undefined): string | undefined {
  if (value === undefined || value.length > 64) return undefined;
  return /^\d{1,9}$/.test(value) || !Number.isNaN(Date.parse(value)) ? value : undefined;
}

/**
 * The API's `Location` as this app's URL (`/api/<name>/...`) when it points under the API's URL at
 * a path the proxy would take back for this API; undefined (dropped) when it points anywhere else.
 */
function publicLocation(
  location: string | undefined,
  api: DownstreamApi,
  rules: ApiRules,
): string | undefined {
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
  let segments: string[];
  try {
    segments = rest === '' ? [] : rest.split('/').map((segment) => decodeURIComponent(segment));
  } catch {
    return undefined;
  }
  if (segmentsProblem(segments) !== undefined || !methodsAt(rules, segments).ok) return undefined;
  const query = rules.forwardsQuery ? target.search : '';
  return `/api/${api.name}${encodedPath(segments)}${query}`;
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * An answer of an API with JSON bodies: JSON passes with its status (its media type reduced to
 * `application/json` or `application/problem+json`); an empty success passes empty; a success that
 * is not JSON is 502; an error that is not JSON becomes a problem with the API's status.
 */
function jsonAnswer(
  upstream: ApiResponse,
  rules: ApiRules,
  headers: Record<string, string>,
): HttpResponseInit {
  const { status } = upstream;
  const contentType = headers['Content-Type'];
  delete headers['Content-Type'];
  const text = upstream.body.toString('utf8');
  if (text !== '' && isJsonMediaType(contentType) && parsesAsJson(text)) {
    const problem = contentType?.toLowerCase().startsWith('application/problem+json');
    headers['Content-Type'] = problem ? 'application/problem+json' : 'application/json';
    return { status, headers, body: text };
  }
  if (status < 400) {
    if (text === '') return { status, headers };
    return problemResponse({
      status: 502,
      title: 'Bad gateway',
      detail: `${sentenceStart(rules.label)} answered with something other than JSON.`,
    });
  }
  const retryAfter = headers['Retry-After'];
  return problemResponse({
    status,
    title: STATUS_CODES[status] ?? 'Error',
    detail: `${sentenceStart(rules.label)} refused the request.`,
    headers: retryAfter === undefined ? {} : { 'Retry-After': retryAfter },
  });
}

/**
 * The API's answer as the browser gets it: status and body, only the allow-listed headers, and
 * this app's own security headers (`Cache-Control: no-store`; the API's content must not run or be
 * framed under this origin). A redirect is not followed: 502.
 */
export function relayAnswer(
  upstream: ApiResponse,
  api: DownstreamApi,
  rules: ApiRules,
  method: ApiMethod,
): HttpResponseInit {
  const { status } = upstream;
  if (status >= 300 && status < 400 && status !== 304) {
    return problemResponse({
      status: 502,
      title: 'Bad gateway',
      detail: `${sentenceStart(rules.label)} answered with a redirect, which is not followed.`,
    });
  }
  const headers: Record<string, string> = { ...SECURITY_HEADERS };
  for (const name of RELAYED_RESPONSE_HEADERS) {
    const value = upstream.headers[name.toLowerCase()];
    if (value !== undefined) headers[name] = value;
  }
  if (status === 429 || status === 503) {
    const retryAfter = safeRetryAfter(upstream.headers['retry-after']);
    if (retryAfter !== undefined) headers['Retry-After'] = retryAfter;
  }
  const location = publicLocation(upstream.headers.location, api, rules);
  if (location !== undefined) headers.Location = location;
  if (rules.jsonBodies) return jsonAnswer(upstream, rules, headers);
  const hasBody = method !== 'HEAD' && status !== 204 && status !== 304 && upstream.body.length > 0;
  return { status, headers, ...(hasBody ? { body: upstream.body } : {}) };
}
