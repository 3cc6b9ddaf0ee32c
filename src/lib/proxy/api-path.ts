import type { HttpRequest } from '@azure/functions';

/** Limits of the path and query that reach an API (DESIGN.md "Downstream APIs"). */
const MAX_PATH_SEGMENTS = 32;
const MAX_PATH_CHARACTERS = 2_048;
const MAX_QUERY_CHARACTERS = 4_096;

/** What goes after the API's URL: `/seg/ments` (each percent-encoded again) and `?query`, or ''. */
export interface ApiTarget {
  readonly path: string;
  readonly query: string;
}

type TargetResult =
  | {
      readonly ok: true;
      readonly target: ApiTarget;
      /** The path's segments as the host decoded them ([] for the API's root). */
      readonly segments: readonly string[];
    }
  | { readonly ok: false; readonly detail: string };

// An encoded slash survives the host's decoding as the three characters `%2F` (Kestrel decodes
// every escape of the path but that one), so it is still recognisable here.
const ENCODED_SLASH = /%2f/i;
// Control characters, `/` and `\`: none may be part of a segment once decoded.
const FORBIDDEN_IN_SEGMENT = /[\p{Cc}/\\]/u;
// RFC 3986 query characters and well-formed percent escapes; anything else was never a valid URL.
const QUERY = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;

function refuse(detail: string): TargetResult {
  return { ok: false, detail };
}

/** Why a path of these segments (each as the host decoded it) cannot be sent on, or undefined. */
export function segmentsProblem(segments: readonly string[]): string | undefined {
  if (segments.length > MAX_PATH_SEGMENTS) {
    return `The path must have at most ${MAX_PATH_SEGMENTS} segments.`;
  }
  for (const segment of segments) {
    if (segment === '') return 'The path must not have empty segments.';
    if (segment === '.' || segment === '..') return 'The path must not have dot segments.';
    if (ENCODED_SLASH.test(segment) || FORBIDDEN_IN_SEGMENT.test(segment)) {
      return 'A path segment must not hold a slash, backslash or control character.';
    }
  }
  return undefined;
}

/** Each segment percent-encoded once, as it goes after an API's URL: `/a/b`, or '' for none. */
export function encodedPath(segments: readonly string[]): string {
  return segments.map((segment) => `/${encodeURIComponent(segment)}`).join('');
}

/**
 * The path and query a call to `/api/<name>/<path>?<query>` sends on. `rest` is the host's
 * catch-all value: the raw rest of the path, already percent-decoded by the host except `%2F`
 * (a `%` in it is a literal percent sign). Nothing is decoded twice: each segment is checked as it
 * is and encoded once on the way out, so `..`, `%2e%2e` and an encoded slash can never climb out
 * of the API's URL.
 */
export function parseApiTarget(rest: string | undefined, rawQuery: string): TargetResult {
  if (rawQuery.length > MAX_QUERY_CHARACTERS) {
    return refuse(`The query must be at most ${MAX_QUERY_CHARACTERS} characters.`);
  }
  if (!QUERY.test(rawQuery)) return refuse('The query holds characters a URL cannot carry.');
  const query = rawQuery === '' ? '' : `?${rawQuery}`;
  if (rest === undefined || rest === '')
    return { ok: true, target: { path: '', query }, segments: [] };
  if (rest.length > MAX_PATH_CHARACTERS) {
    return refuse(`The path must be at most ${MAX_PATH_CHARACTERS} characters.`);
  }
  const segments = rest.split('/');
  const problem = segmentsProblem(segments);
  if (problem !== undefined) return refuse(problem);
  return { ok: true, target: { path: encodedPath(segments), query }, segments };
}

/** The request's query as it came (not decoded), without the `?`. */
export function rawQueryOf(request: HttpRequest): string {
  const url = request.url;
  const queryAt = url.indexOf('?');
  if (queryAt === -1) return '';
  const fragmentAt = url.indexOf('#', queryAt);
  return url.slice(queryAt + 1, fragmentAt === -1 ? undefined : fragmentAt);
}
