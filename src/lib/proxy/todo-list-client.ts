import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
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

function headerOf(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The answer refused: larger than MAX_RESPONSE_BYTES. */
const TOO_LARGE = 'ERR_BAD_RESPONSE';

/**
 * The ToDoList API over one pair of keep-alive agents for the whole process, so steady traffic
 * reuses connections. Requests go to `endpoint` or `endpoint/<id>` and nowhere else: no redirect
 * is followed, no environment proxy is used, and only the headers built here are sent.
 *
 * Plain `node:http`, not axios: loading axios cost more than the rest of the bundle's packages
 * (it builds its fetch adapter at import), and a call 0.09 ms more (docs/performance.md).
 */
export class TodoListClient {
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly secure: boolean;
  private readonly agent: http.Agent;

  constructor(options: TodoListClientOptions) {
    this.endpoint = options.endpoint;
    this.timeoutMs = options.timeoutMs;
    this.secure = new URL(options.endpoint).protocol === 'https:';
    this.agent = this.secure
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true });
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
    // One deadline for the whole exchange, answer body included. A timer of its own, cleared at
    // the end: an AbortSignal.timeout() given to the request would keep the request (and the
    // invocation around it) alive until the deadline, however early the answer came.
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      return await this.exchange(request, (outgoing) => {
        timer = setTimeout(() => {
          timedOut = true;
          outgoing.destroy();
        }, this.timeoutMs);
      });
    } catch (error) {
      if (timedOut) throw new TodoListTimeoutError(this.timeoutMs);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private exchange(
    request: TodoListRequest,
    started: (outgoing: http.ClientRequest) => void,
  ): Promise<TodoListResponse> {
    const body = request.body === undefined ? undefined : Buffer.from(request.body, 'utf8');
    const headers: http.OutgoingHttpHeaders = {
      Authorization: `Bearer ${request.accessToken}`,
      Accept: 'application/json',
      ...(body === undefined
        ? {}
        : { 'Content-Type': 'application/json', 'Content-Length': body.length }),
    };
    const send = this.secure ? https.request : http.request;
    return new Promise<TodoListResponse>((resolve, reject) => {
      const outgoing = send(
        this.urlFor(request.id),
        { method: request.method, headers, agent: this.agent },
        (answer: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let received = 0;
          answer.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > MAX_RESPONSE_BYTES) {
              answer.destroy();
              reject(new TodoListUnreachableError(TOO_LARGE, false));
              return;
            }
            chunks.push(chunk);
          });
          answer.on('error', (error: NodeJS.ErrnoException) =>
            reject(new TodoListUnreachableError(error.code ?? 'ERR_NETWORK', false)),
          );
          answer.on('close', () => {
            if (!answer.complete) reject(new TodoListUnreachableError('ECONNRESET', false));
          });
          answer.on('end', () =>
            resolve({
              status: answer.statusCode ?? 0,
              contentType: headerOf(answer.headers['content-type']),
              body: Buffer.concat(chunks),
              retryAfter: headerOf(answer.headers['retry-after']),
              location: headerOf(answer.headers.location),
            }),
          );
        },
      );
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        // A reused keep-alive connection reset before any answer: mostly one the server closed.
        const stale = error.code === 'ECONNRESET' && outgoing.reusedSocket;
        reject(new TodoListUnreachableError(error.code ?? 'ERR_NETWORK', stale));
      });
      started(outgoing);
      outgoing.end(body);
    });
  }
}
