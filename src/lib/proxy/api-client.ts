import http from 'node:http';
import https from 'node:https';
import axios, { AxiosError, type AxiosInstance } from 'axios';
import type { DownstreamApi } from '../config';
import type { ApiTarget } from './api-path';

/** The methods `/api/<name>` forwards. */
export const API_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type ApiMethod = (typeof API_METHODS)[number];

/** The request headers a page's call may pass on; every other one (Cookie, Authorization, Host, hop-by-hop, …) stays here. */
export const FORWARDED_REQUEST_HEADERS = [
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

/** The answer headers passed on as they came; `Retry-After` and `Location` are judged by the proxy. */
export const RELAYED_RESPONSE_HEADERS = [
  'content-type',
  'content-language',
  'content-disposition',
  'etag',
  'last-modified',
] as const;

/** Responses are buffered whole by the host; an API answering more than this is refused (502). */
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
// Replaying these is harmless if the first attempt did reach the API.
const IDEMPOTENT: ReadonlySet<ApiMethod> = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

/** The API did not answer within its `TIMEOUT_MS`: 504. */
export class ApiTimeoutError extends Error {
  constructor(api: string, timeoutMs: number) {
    super(`The API "${api}" did not answer within ${timeoutMs} ms`);
    this.name = 'ApiTimeoutError';
  }
}

/** The API could not be reached, dropped the connection or answered too much: 502. */
export class ApiUnreachableError extends Error {
  readonly code: string;
  readonly staleConnection: boolean;

  constructor(api: string, code: string, staleConnection: boolean) {
    super(`The API "${api}" could not be reached (${code})`);
    this.name = 'ApiUnreachableError';
    this.code = code;
    this.staleConnection = staleConnection;
  }
}

export interface ApiRequest {
  readonly method: ApiMethod;
  readonly target: ApiTarget;
  /** Already filtered to FORWARDED_REQUEST_HEADERS, names lower-case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
  readonly accessToken: string;
}

export interface ApiResponse {
  readonly status: number;
  /** Every header the API sent, names lower-case; the proxy picks what it passes on. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

function headerValues(headers: Record<string, unknown>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') values[name.toLowerCase()] = value;
  }
  return values;
}

/**
 * One configured API over keep-alive agents of its own. Requests go to the API's URL plus a path
 * validated by `parseApiTarget`, and nowhere else: no redirect is followed, no environment proxy
 * is used, and only the headers given (plus the access token) are sent.
 */
export class ApiClient {
  readonly api: DownstreamApi;
  private readonly http: AxiosInstance;

  constructor(api: DownstreamApi) {
    this.api = api;
    this.http = axios.create({
      httpAgent: new http.Agent({ keepAlive: true }),
      httpsAgent: new https.Agent({ keepAlive: true }),
      proxy: false,
      maxRedirects: 0,
      maxContentLength: MAX_RESPONSE_BYTES,
      responseType: 'arraybuffer',
      // Bytes go through as they came: no JSON parsing or serializing of either body.
      transformRequest: [(data: unknown) => data],
      transformResponse: [(data: unknown) => data],
      validateStatus: () => true,
    });
  }

  urlFor(target: ApiTarget): string {
    return `${this.api.url}${target.path}${target.query}`;
  }

  async send(request: ApiRequest): Promise<ApiResponse> {
    try {
      return await this.attempt(request);
    } catch (error) {
      const retry =
        error instanceof ApiUnreachableError &&
        error.staleConnection &&
        IDEMPOTENT.has(request.method);
      if (retry) return this.attempt(request);
      throw error;
    }
  }

  private async attempt(request: ApiRequest): Promise<ApiResponse> {
    const signal = AbortSignal.timeout(this.api.timeoutMs);
    try {
      const response = await this.http.request<ArrayBuffer>({
        method: request.method,
        url: this.urlFor(request.target),
        headers: {
          // axios' own default would otherwise stand in for an Accept the page did not send.
          accept: '*/*',
          ...request.headers,
          authorization: `Bearer ${request.accessToken}`,
          'user-agent': false,
        },
        ...(request.body === undefined ? {} : { data: request.body }),
        signal,
      });
      return {
        status: response.status,
        headers: headerValues(response.headers),
        body: Buffer.from(response.data ?? new ArrayBuffer(0)),
      };
    } catch (error) {
      if (signal.aborted) throw new ApiTimeoutError(this.api.name, this.api.timeoutMs);
      if (error instanceof AxiosError) {
        const stale =
          error.code === 'ECONNRESET' &&
          (error.request as http.ClientRequest | undefined)?.reusedSocket === true;
        throw new ApiUnreachableError(this.api.name, error.code ?? 'ERR_NETWORK', stale);
      }
      throw error;
    }
  }
}
