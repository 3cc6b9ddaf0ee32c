import http, { type IncomingHttpHeaders } from 'node:http';

/** One answer as it came over the wire. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
  /** The body as JSON, or undefined when it is not JSON. */
  readonly json: Record<string, unknown> | undefined;
  readonly elapsedMs: number;
}

export interface RawRequest {
  readonly method?: string;
  /** Sent exactly as written (no normalization of dot segments or escapes). */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  /** Streams the body with `Transfer-Encoding: chunked` instead of a Content-Length. */
  readonly chunked?: boolean;
  /** The request fails after this long without an answer; default 30 s. */
  readonly timeoutMs?: number;
}

/**
 * One HTTP/1.1 request to `origin`, on a connection of its own, exactly as given: `fetch` would
 * normalize the path and refuse some headers, which a hostile client does not.
 */
export function rawRequest(origin: string, request: RawRequest): Promise<RawAnswer> {
  const url = new URL(origin);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      {
        host: url.hostname === 'localhost' ? '127.0.0.1' : url.hostname,
        port: url.port,
        method: request.method ?? 'GET',
        path: request.path,
        headers: { host: url.host, ...request.headers },
        agent: false,
        // Read oversized answers too, so a test can say what is wrong with them.
        maxHeaderSize: 1024 * 1024,
        timeout: request.timeoutMs ?? 30_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let json: Record<string, unknown> | undefined;
          try {
            const parsed = JSON.parse(text) as unknown;
            if (parsed !== null && typeof parsed === 'object') {
              json = parsed as Record<string, unknown>;
            }
          } catch {
            // Not every answer is JSON.
          }
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body,
            text,
            json,
            elapsedMs: performance.now() - started,
          });
        });
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer to ${request.path}`)));
    outgoing.on('error', reject);
    if (request.chunked) {
      outgoing.setHeader('transfer-encoding', 'chunked');
      const body = Buffer.from(request.body ?? '');
      for (let at = 0; at < body.length; at += 4096) outgoing.write(body.subarray(at, at + 4096));
      outgoing.end();
    } else if (request.body !== undefined) {
      // Node's client sends no Content-Length with a GET's body unless told.
      const body = Buffer.from(request.body);
      outgoing.setHeader('content-length', body.length);
      outgoing.end(body);
    } else {
      outgoing.end();
    }
  });
}

/** Every header of an answer as `name: value` lines, Set-Cookie included. */
export function headerText(headers: IncomingHttpHeaders): string {
  return Object.entries(headers)
    .flatMap(([name, value]) =>
      (Array.isArray(value) ? value : [value ?? '']).map((item) => `${name}: ${item}`),
    )
    .join('\n');
}

/** A JavaScript stack frame, as Node prints it: `at fn (/path/file.js:12:34)`. */
export const STACK_FRAME = /\bat\s+[^\n]*?\.(?:c|m)?(?:js|ts):\d+/;
/** A JWT: three base64url parts of a JSON header (`eyJ`), a payload and a signature. */
export const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/;

/**
 * The secrets among the app settings that must never show up in an answer or a log line: the
 * client secret, every session and token-cache key (base64 and base64url) and the storage
 * account key.
 */
export function settingSecrets(settings: Readonly<Record<string, string>>): Map<string, string> {
  const secrets = new Map<string, string>();
  const add = (value: string | undefined, kind: string) => {
    if (value === undefined || value.length < 16) return;
    secrets.set(value, kind);
    const base64url = value.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    secrets.set(base64url, kind);
  };
  add(settings.CLIENT_SECRET, 'CLIENT_SECRET');
  for (const name of ['SESSION_KEYS', 'TOKEN_CACHE_KEYS']) {
    for (const key of (settings[name] ?? '').split(',')) add(key.trim(), name);
  }
  add(
    /AccountKey=([^;]+)/.exec(settings.TOKEN_CACHE_STORAGE ?? '')?.[1],
    'the storage account key',
  );
  return secrets;
}

/**
 * What must never be in an answer (status line aside) or a log line: a stack frame, a JWT, a
 * storage connection string's key, or any of `secrets`. Returns what was found, or [] when clean.
 */
export function leaksIn(text: string, secrets: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  const frame = STACK_FRAME.exec(text);
  if (frame) found.push(`a stack frame (${frame[0].slice(0, 80)})`);
  const jwt = JWT.exec(text);
  if (jwt) found.push(`a JWT (${jwt[0].slice(0, 24)}…)`);
  if (/AccountKey=/i.test(text)) found.push('a storage connection string (AccountKey=)');
  for (const [secret, kind] of secrets) if (text.includes(secret)) found.push(kind);
  return found;
}

/**
 * The `__Host-` rules every cookie of the app must follow: `Secure`, `HttpOnly`, `Path=/`, no
 * `Domain`, and `SameSite=Strict` for the session or `Lax` for the sign-in state. Returns the
 * broken rules, or [] when every Set-Cookie line follows them.
 */
export function cookieRuleViolations(headers: IncomingHttpHeaders): string[] {
  const problems: string[] = [];
  for (const line of headers['set-cookie'] ?? []) {
    const [pair = '', ...rest] = line.split(';').map((part) => part.trim());
    const name = pair.slice(0, pair.indexOf('='));
    const attributes = new Map(
      rest.map((attribute) => {
        const [key = '', ...value] = attribute.split('=');
        return [key.toLowerCase(), value.join('=').toLowerCase()] as const;
      }),
    );
    // The session cookie, or one sign-in's state cookie (`__Host-bff-signin-<tag>`).
    const expected = /^__Host-bff-signin-[A-Za-z0-9_-]{16}$/.test(name)
      ? 'lax'
      : name === '__Host-bff-session'
        ? 'strict'
        : undefined;
    if (expected === undefined) problems.push(`unexpected cookie ${name}`);
    if (!attributes.has('secure')) problems.push(`${name} without Secure`);
    if (!attributes.has('httponly')) problems.push(`${name} without HttpOnly`);
    if (attributes.get('path') !== '/') problems.push(`${name} without Path=/`);
    if (attributes.has('domain')) problems.push(`${name} with a Domain`);
    if (attributes.get('samesite') !== expected) {
      problems.push(`${name} with SameSite=${attributes.get('samesite') ?? '(none)'}`);
    }
  }
  return problems;
}

/** An answer whose `json` is `{}` when the body is not JSON, for tests that read fields of it. */
export type Answer = RawAnswer & { readonly json: Record<string, unknown> };

/**
 * `rawRequest` as a test writes a call: the body goes chunked when the headers say
 * `Transfer-Encoding`, else with its Content-Length.
 */
export async function requestAsWritten(
  origin: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  const answer = await rawRequest(origin, {
    path,
    ...options,
    chunked: options.headers?.['transfer-encoding'] !== undefined,
  });
  return { ...answer, json: answer.json ?? {} };
}
