import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { ApiTarget } from './api-path';
import type { ApiMethod } from './api-rules';

// Replaying these is harmless if the first attempt did reach the API.
const IDEMPOTENT: ReadonlySet<ApiMethod> = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

/** The API did not answer within its `TIMEOUT_MS`: 504. */
export class ApiTimeoutError extends Error {
  constructor(api: string, timeoutMs: number) {
    super(`The API "${api}" did not answer within ${timeoutMs} ms`);
    this.name = 'ApiTimeoutError';
  }
}

/** The API could not be reached, dropped the connection or answered too much: 502. `code` is Node's, e.g. ECONNREFUSED. */
export class ApiUnreachableError extends Error {
  readonly code: string;
  /** A reused keep-alive connection reset before any answer: mostly one the server closed while idle. */
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
  /** Checked by `parseApiTarget`: it is only appended to the API's URL here. */
  readonly target: ApiTarget;
  /** The headers to send, names lower-case, already chosen by the proxy's rules. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
  readonly accessToken: string;
}

export interface ApiResponse {
  readonly status: number;
  /** The API's single-valued headers, names lower-case; the proxy picks what it passes on. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

interface ApiClientOptions {
  /** The API's name, for error messages. */
  readonly name: string;
  /** The base URL without a trailing slash: the only place requests go. */
  readonly url: string;
  readonly timeoutMs: number;
  /** An answer larger than this is refused (ApiUnreachableError) instead of buffered. */
  readonly maxResponseBytes: number;
}

/** The answer refused: larger than the client's limit. */
const TOO_LARGE = 'ERR_BAD_RESPONSE';

function singleValued(headers: http.IncomingHttpHeaders): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') values[name] = value;
  }
  return values;
}

/**
 * One configured API over one keep-alive agent for the whole process, so steady traffic reuses
 * connections. Requests go to the API's URL plus a checked path and nowhere else: no redirect is
 * followed, no environment proxy is used, and only the headers given (plus the access token and
 * the body's length) are sent.
 *
 * Plain `node:http`, not axios: loading axios cost more than the rest of the bundle's packages
 * (it builds its fetch adapter at import), and a call 0.09 ms more (docs/performance.md).
 */
export class ApiClient {
  private readonly options: ApiClientOptions;
  private readonly secure: boolean;
  private readonly agent: http.Agent;

  constructor(options: ApiClientOptions) {
    this.options = options;
    this.secure = new URL(options.url).protocol === 'https:';
    this.agent = this.secure
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true });
  }

  urlFor(target: ApiTarget): string {
    return `${this.options.url}${target.path}${target.query}`;
  }

  async send(request: ApiRequest): Promise<ApiResponse> {
    try {
      return await this.attempt(request);
    } catch (error) {
      const retry =
        error instanceof ApiUnreachableError &&
        error.staleConnection &&
        IDEMPOTENT.has(request.method);
      // On a new connection: the other pooled ones may have been closed by the server at the same
      // moment (it closes connections idle since one burst together), and a second stale one
      // would answer the page 502 for nothing (a refresh storm met it: docs/performance.md).
      if (retry) return this.attempt(request, { freshConnection: true });
      throw error;
    }
  }

  private async attempt(
    request: ApiRequest,
    { freshConnection = false } = {},
  ): Promise<ApiResponse> {
    // One deadline for the whole exchange, answer body included. A timer of its own, cleared at
    // the end: an AbortSignal.timeout() given to the request would keep the request (and the
    // invocation around it) alive until the deadline, however early the answer came.
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      return await this.exchange(request, freshConnection, (outgoing) => {
        timer = setTimeout(() => {
          timedOut = true;
          outgoing.destroy();
        }, this.options.timeoutMs);
      });
    } catch (error) {
      if (timedOut) throw new ApiTimeoutError(this.options.name, this.options.timeoutMs);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private exchange(
    request: ApiRequest,
    freshConnection: boolean,
    started: (outgoing: http.ClientRequest) => void,
  ): Promise<ApiResponse> {
    const { name, maxResponseBytes } = this.options;
    const unreachable = (code: string, stale = false) => new ApiUnreachableError(name, code, stale);
    const headers: http.OutgoingHttpHeaders = {
      ...request.headers,
      authorization: `Bearer ${request.accessToken}`,
      ...(request.body === undefined ? {} : { 'content-length': request.body.length }),
    };
    const send = this.secure ? https.request : http.request;
    return new Promise<ApiResponse>((resolve, reject) => {
      const outgoing = send(
        this.urlFor(request.target),
        // `agent: false`: a connection of its own, closed after this exchange.
        { method: request.method, headers, agent: freshConnection ? false : this.agent },
        (answer: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let received = 0;
          answer.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > maxResponseBytes) {
              answer.destroy();
              reject(unreachable(TOO_LARGE));
              return;
            }
            chunks.push(chunk);
          });
          answer.on('error', (error: NodeJS.ErrnoException) =>
            reject(unreachable(error.code ?? 'ERR_NETWORK')),
          );
          answer.on('close', () => {
            if (!answer.complete) reject(unreachable('ECONNRESET'));
          });
          answer.on('end', () =>
            resolve({
              status: answer.statusCode ?? 0,
              headers: singleValued(answer.headers),
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        // A reused keep-alive connection reset or closed under the write before any answer:
        // mostly one the server closed while it was idle.
        const stale =
          (error.code === 'ECONNRESET' || error.code === 'EPIPE') && outgoing.reusedSocket;
        reject(unreachable(error.code ?? 'ERR_NETWORK', stale));
      });
      started(outgoing);
      outgoing.end(request.body);
    });
  }
}
