import type { HttpResponseInit } from '@azure/functions';

/**
 * Headers every response of this app carries. The CSP suits every answer that is not the page
 * (JSON, redirects, errors): nothing in it may run, load or be framed. The page sets its own.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

export interface Problem {
  readonly status: number;
  readonly title: string;
  readonly detail?: string;
  /** Seconds the client should wait before retrying, for 429 and 503 answers. */
  readonly retryAfterSeconds?: number;
  /** Extension members such as `loginUrl`. */
  readonly extensions?: Readonly<Record<string, unknown>>;
  /** Further response headers, such as `Allow` with a 405. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** An RFC 9457 problem details response: never a stack, token or secret. */
export function problemResponse(problem: Problem): HttpResponseInit {
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    ...problem.headers,
    'Content-Type': 'application/problem+json',
  };
  if (problem.retryAfterSeconds !== undefined) {
    headers['Retry-After'] = String(problem.retryAfterSeconds);
  }
  return {
    status: problem.status,
    headers,
    body: JSON.stringify({
      type: 'about:blank',
      title: problem.title,
      status: problem.status,
      ...(problem.detail === undefined ? {} : { detail: problem.detail }),
      ...problem.extensions,
    }),
  };
}

export function jsonResponse(status: number, body: unknown): HttpResponseInit {
  return {
    status,
    headers: { ...SECURITY_HEADERS, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  };
}
