import http, { type ClientRequest } from 'node:http';
import https from 'node:https';
import axios, { AxiosError, type AxiosInstance } from 'axios';
import type { TodoMethod } from './todo-request';

/** A to-do list answer is small; anything near this is not the API we know. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
// Replaying these is harmless if the first attempt did reach the API.
const IDEMPOTENT: ReadonlySet<TodoMethod> = new Set(['GET', 'PUT', 'DELETE']);

/** The API did not answer in time: 504. */
export class TodoListTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`The to-do list API did not answer within ${timeoutMs} ms`);
    this.name = 'TodoListTimeoutError';
  }
}

/** The API could not be reached or dropped the connection: 502. `code` is Node's, e.g. ECONNREFUSED. */
export class TodoListUnreachableError extends Error {
  readonly code: string;
  /** A reused keep-alive connection reset before any answer: mostly one the server closed while idle. */
  readonly staleConnection: boolean;

  constructor(code: string, staleConnection: boolean) {
    super(`The to-do list API could not be reached (${code})`);
    this.name = 'TodoListUnreachableError';
    this.code = code;
    this.staleConnection = staleConnection;
  }
}

export interface TodoListRequest {
  readonly method: TodoMethod;
  /** Undefined for the collection. Must already be validated: it is only percent-encoded here. */
  readonly id: string | undefined;
  /** JSON text, already validated; sent as it came rather than re-serialized. */
  readonly body: string | undefined;
  readonly accessToken: string;
}

/** What the proxy may pass on from an answer; every other upstream header is dropped. */
export interface TodoListResponse {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: Buffer;
  readonly retryAfter: string | undefined;
  readonly location: string | undefined;
}

export interface TodoListClientOptions {
  /** `TODOLIST_ENDPOINT` without a trailing slash: the only place requests go. */
  readonly endpoint: string;
  readonly timeoutMs: number;
}

function headerOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function isStaleConnection(error: AxiosError): boolean {
  const request = error.request as ClientRequest | undefined;
  return error.code === 'ECONNRESET' && request?.reusedSocket === true;
}

/**
 * The ToDoList API over one pair of keep-alive agents for the whole process, so steady traffic
 * reuses connections. Requests go to `endpoint` or `endpoint/<id>` and nowhere else: no redirect
 * is followed, no environment proxy is used, and only the headers built here are sent.
 */
export class TodoListClient {
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly http: AxiosInstance;

  constructor(options: TodoListClientOptions) {
    this.endpoint = options.endpoint;
    this.timeoutMs = options.timeoutMs;
    this.http = axios.create({
      httpAgent: new http.Agent({ keepAlive: true }),
      httpsAgent: new https.Agent({ keepAlive: true }),
      proxy: false,
      maxRedirects: 0,
      maxContentLength: MAX_RESPONSE_BYTES,
      responseType: 'arraybuffer',
      // Every status is an answer to relay, not an exception.
      validateStatus: () => true,
    });
  }

  /** The upstream URL of the collection or of one item. */
  urlFor(id: string | undefined): string {
    return id === undefined ? this.endpoint : `${this.endpoint}/${encodeURIComponent(id)}`;
  }

  async send(request: TodoListRequest): Promise<TodoListResponse> {
    try {
      return await this.attempt(request);
    } catch (error) {
      const retry =
        error instanceof TodoListUnreachableError &&
        error.staleConnection &&
        IDEMPOTENT.has(request.method);
      if (retry) return this.attempt(request);
      throw error;
    }
  }

  private async attempt(request: TodoListRequest): Promise<TodoListResponse> {
    const withBody = request.body !== undefined;
    // One deadline for the whole exchange; axios' own timeout only bounds socket inactivity.
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await this.http.request<Buffer>({
        method: request.method,
        url: this.urlFor(request.id),
        headers: {
          Authorization: `Bearer ${request.accessToken}`,
          Accept: 'application/json',
          'User-Agent': false,
          ...(withBody ? { 'Content-Type': 'application/json' } : {}),
        },
        ...(withBody ? { data: request.body } : {}),
        signal,
      });
      return {
        status: response.status,
        contentType: headerOf(response.headers['content-type']),
        body: Buffer.from(response.data),
        retryAfter: headerOf(response.headers['retry-after']),
        location: headerOf(response.headers.location),
      };
    } catch (error) {
      if (signal.aborted) throw new TodoListTimeoutError(this.timeoutMs);
      if (error instanceof AxiosError) {
        throw new TodoListUnreachableError(error.code ?? 'ERR_NETWORK', isStaleConnection(error));
      }
      throw error;
    }
  }
}
