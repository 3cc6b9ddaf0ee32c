// A small HTTP(S) client for the bench: keep-alive agents, no redirects followed, the body read
// whole. Node's own http module rather than fetch, so the timing has no extra layers and the
// emulator's CA (made at run time, after Node read NODE_EXTRA_CA_CERTS) can be trusted per agent.
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { CookieJar } from '../dev/cookie-jar.mts';

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  /** Default: the keep-alive agent of the URL's scheme. */
  readonly agent?: http.Agent;
  readonly timeoutMs?: number;
}

/** A reused keep-alive connection failed before any answer: the server had closed it. */
class StaleConnectionError extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

export class HttpClient {
  readonly httpAgent: http.Agent;
  readonly httpsAgent: https.Agent;
  private readonly timeoutMs: number;

  /** `timeoutMs`: how long a request may wait for an answer (default 30 s). */
  constructor(options: { caCertPem?: string; maxSockets?: number; timeoutMs?: number } = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    const common = { keepAlive: true, maxSockets: options.maxSockets ?? Infinity };
    this.httpAgent = new http.Agent(common);
    this.httpsAgent = new https.Agent({
      ...common,
      ...(options.caCertPem === undefined ? {} : { ca: options.caCertPem }),
    });
  }

  /**
   * One request. A GET whose reused keep-alive connection was closed by the server before any
   * answer is sent once more on a new connection, as browsers do: the server never saw it.
   */
  async request(url: string | URL, options: RequestOptions = {}): Promise<Answer> {
    try {
      return await this.send(url, options);
    } catch (error) {
      const stale = error instanceof StaleConnectionError;
      if (!stale || (options.method ?? 'GET') !== 'GET') throw stale ? error.cause : error;
      return this.send(url, options);
    }
  }

  private send(url: string | URL, options: RequestOptions): Promise<Answer> {
    const target = typeof url === 'string' ? new URL(url) : url;
    const secure = target.protocol === 'https:';
    const send = secure ? https.request : http.request;
    return new Promise<Answer>((resolve, reject) => {
      const outgoing = send(
        target,
        {
          method: options.method ?? 'GET',
          headers: options.headers,
          agent: options.agent ?? (secure ? this.httpsAgent : this.httpAgent),
          timeout: options.timeoutMs ?? this.timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(new Error(`timed out: ${target.href}`)));
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        const closedUnderUs =
          outgoing.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
        reject(closedUnderUs ? new StaleConnectionError(error) : error);
      });
      outgoing.end(options.body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/**
 * Signs a user in through the app and the emulator without a browser page: the app's
 * `/auth/signin` with `loginHint`, whose redirects are followed one hop at a time with the user's
 * cookie jar until the app sends the browser back to a page of its own. Returns the session cookie.
 */
export async function signIn(
  client: HttpClient,
  jar: CookieJar,
  appOrigin: string,
  loginHint: string,
  sessionCookieName: string,
): Promise<string> {
  const app = new URL(appOrigin);
  let current = new URL(
    `/auth/signin?${new URLSearchParams({ returnTo: '/', loginHint })}`,
    appOrigin,
  );
  for (let hop = 0; hop < 15; hop += 1) {
    const cookie = jar.header(current);
    const answer = await client.request(loopback(current), {
      headers: { host: current.host, ...(cookie === undefined ? {} : { cookie }) },
    });
    jar.keep(current, answer.headers['set-cookie']);
    const location = answer.headers.location;
    if (answer.status < 300 || answer.status >= 400 || location === undefined) {
      throw new Error(
        `sign-in of ${loginHint} stopped at ${answer.status} ${current.pathname}: ${answer.body
          .toString('utf8')
          .slice(0, 300)}`,
      );
    }
    const next = new URL(location, current);
    if (next.origin === app.origin && !next.pathname.startsWith('/auth/')) {
      const session = jar.get(app.hostname, sessionCookieName);
      if (session === undefined) throw new Error(`sign-in of ${loginHint} set no session cookie`);
      return session;
    }
    current = next;
  }
  throw new Error(`sign-in of ${loginHint}: too many redirects`);
}

/** The URL with `localhost` replaced by 127.0.0.1: the servers listen on IPv4 loopback only. */
export function loopback(url: URL): URL {
  if (url.hostname !== 'localhost') return url;
  const copy = new URL(url);
  copy.hostname = '127.0.0.1';
  return copy;
}
