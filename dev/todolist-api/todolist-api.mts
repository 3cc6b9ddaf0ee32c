// A sample ToDoList web API with the contract of the Entra External ID tutorial's API, for offline
// development and tests: bearer JWTs checked against the emulator's JWKS, data kept per `oid` in
// memory (and in a file when asked), and injectable faults so the app's error handling can be
// exercised.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer, STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { rootCertificates } from 'node:tls';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import type { FetchImplementation, JWTPayload } from 'jose';
import {
  BadRequirementError,
  ClaimsRequirements,
  type ClaimsRequirement,
} from './claims-challenge.mts';

export type { ClaimsRequirement };

export interface TodoListApiOptions {
  /** Expected `iss`, e.g. `https://127.0.0.1:PORT/<tenantId>/v2.0`. */
  issuer: string;
  jwksUri: string;
  /** Expected `aud`: the API's client id. */
  audience: string;
  /** Extra CA trusted (besides the usual roots) when fetching the JWKS over HTTPS. */
  caCertPem?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  readScope?: string;
  writeScope?: string;
  maxBodyBytes?: number;
  /** Keeps the items in this JSON file, read at start and rewritten after every change. */
  dataFile?: string;
  /** Routes that need an authentication context (`acrs`) from the start (see claims-challenge.mts). */
  claimsRequirements?: ClaimsRequirement[];
}

export interface TodoItem {
  id: string;
  owner: string;
  description: string;
}

export type FaultMode = 'down' | 'slow' | 'status' | 'reject_token';

/**
 * `count` limits how many requests a fault hits; without it the fault stays until cleared. `oid`
 * limits it to the requests of one user (the bearer token's `oid`), so a test can fail its own
 * user's calls on an API that other tests share.
 */
export type Fault = (
  | { mode: 'down'; count?: number }
  | { mode: 'slow'; delayMs: number; count?: number }
  | { mode: 'status'; status: number; retryAfter?: number | string; count?: number }
  | { mode: 'reject_token'; count?: number }
) & { oid?: string };

export interface LoggedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface TodoListApiCounters {
  /** Requests to the to-do routes (admin calls are not counted). */
  requests: number;
  /** Responses by status code; dropped connections have none. */
  byStatus: Record<string, number>;
  /** How many requests each fault hit. */
  faults: Record<FaultMode, number>;
}

export interface TodoListApi {
  origin: string;
  /** `${origin}/api/todolist`, the value for TODOLIST_ENDPOINT. */
  endpoint: string;
  requests(): LoggedRequest[];
  counters(): TodoListApiCounters;
  /** Sets the fault of that mode (and user), replacing an earlier one; other faults stay. */
  setFault(fault: Fault): void;
  /** Clears every fault, or only those set for `oid`. */
  clearFaults(oid?: string): void;
  /** Makes calls need an `acrs` value in their token, else a claims challenge (claims-challenge.mts). */
  requireClaims(requirement: ClaimsRequirement): void;
  clearClaimsRequirements(): void;
  /** Clears data, faults, claims requirements, counters and the request log. */
  reset(): void;
  close(): Promise<void>;
}

const MAX_LOGGED_REQUESTS = 200;
const MAX_DESCRIPTION_LENGTH = 1000;
const COLLECTION_METHODS = ['GET', 'POST'];
const ITEM_METHODS = ['GET', 'PUT', 'PATCH', 'DELETE'];
const ADMIN_ROUTES: Record<string, string[]> = {
  '/_api/faults': ['POST', 'DELETE'],
  '/_api/requests': ['GET'],
  '/_api/counters': ['GET'],
  '/_api/reset': ['POST'],
  '/_api/claims-challenges': ['GET', 'POST', 'DELETE'],
};
// jose errors that mean the token itself is bad; any other failure is ours (e.g. keys unreachable).
const TOKEN_ERRORS = new Set([
  'ERR_JWT_EXPIRED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_INVALID',
  'ERR_JWS_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);

class Problem extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly errors: Record<string, string[]> | undefined;

  constructor(
    status: number,
    detail: string,
    headers: Record<string, string> = {},
    errors?: Record<string, string[]>,
  ) {
    super(detail);
    this.status = status;
    this.headers = headers;
    this.errors = errors;
  }
}

export async function startTodoListApi(options: TodoListApiOptions): Promise<TodoListApi> {
  const host = options.host ?? '127.0.0.1';
  const readScope = options.readScope ?? 'ToDoList.Read';
  const writeScope = options.writeScope ?? 'ToDoList.ReadWrite';
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024;
  const jwks = createRemoteJWKSet(
    new URL(options.jwksUri),
    options.caCertPem === undefined ? {} : { [customFetch]: fetchTrusting(options.caCertPem) },
  );

  const store = loadItems(options.dataFile);
  const saveItems = () => {
    if (options.dataFile === undefined) return;
    mkdirSync(dirname(options.dataFile), { recursive: true });
    const temporary = `${options.dataFile}.${process.pid}.tmp`;
    writeFileSync(
      temporary,
      JSON.stringify([...store.values()].flatMap((items) => [...items.values()])),
    );
    renameSync(temporary, options.dataFile);
  };
  // Keyed by mode and user (`*` for a fault on every user's requests).
  const faults = new Map<string, { fault: Fault; remaining: number }>();
  const claimsRequirements = new ClaimsRequirements(
    options.issuer,
    options.claimsRequirements ?? [],
  );
  let log: LoggedRequest[] = [];
  let counters = newCounters();
  const closing = new AbortController();

  // Takes unknown so the admin surface can pass JSON straight in: parseFault checks it.
  function setFault(value: unknown): void {
    const fault = parseFault(value);
    faults.set(faultKey(fault.mode, fault.oid), { fault, remaining: fault.count ?? Infinity });
  }

  function clearFaults(oid?: string): void {
    if (oid === undefined) return faults.clear();
    for (const [key, { fault }] of faults) if (fault.oid === oid) faults.delete(key);
  }

  /** The fault of this mode for the request's user, else the one for every user. */
  function takeFault<M extends FaultMode>(
    req: IncomingMessage,
    mode: M,
  ): Extract<Fault, { mode: M }> | undefined {
    if (faults.size === 0) return undefined;
    const oid = unverifiedOid(req);
    const keys = [...(oid === undefined ? [] : [faultKey(mode, oid)]), faultKey(mode, undefined)];
    const key = keys.find((candidate) => faults.has(candidate));
    const active = key === undefined ? undefined : faults.get(key);
    if (key === undefined || active === undefined) return undefined;
    if (--active.remaining <= 0) faults.delete(key);
    counters.faults[mode] += 1;
    return active.fault as Extract<Fault, { mode: M }>;
  }

  async function authenticate(
    req: IncomingMessage,
    accepted: string[],
    path: string,
  ): Promise<string> {
    const [scheme, token, ...rest] = (req.headers.authorization ?? '').split(' ');
    // RFC 6750 §3.1: no error code when the client sent no bearer credentials at all.
    if (scheme?.toLowerCase() !== 'bearer') {
      throw new Problem(401, 'An access token is required.', { 'WWW-Authenticate': 'Bearer' });
    }
    const invalid = (detail: string) =>
      new Problem(401, detail, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    if (takeFault(req, 'reject_token'))
      throw invalid('The access token was rejected (injected fault).');
    if (!token || rest.length > 0) throw invalid('The Authorization header is malformed.');

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ['RS256'],
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !TOKEN_ERRORS.has(code)) {
        const cause = (err as Error).cause;
        console.error(
          `todolist-api: cannot get signing keys from ${options.jwksUri}: ${String(err)}` +
            (cause instanceof Error ? ` (${cause.message})` : ''),
        );
        throw new Problem(503, 'The API cannot get the token signing keys.');
      }
      // Only jose's fixed claim names reach the client, never the token or its contents.
      const claim = (err as { claim?: unknown }).claim;
      throw invalid(
        code === 'ERR_JWT_EXPIRED'
          ? 'The access token has expired.'
          : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && typeof claim === 'string'
            ? `The access token's '${claim}' claim is not valid.`
            : 'The access token could not be verified.',
      );
    }
    if (typeof payload.oid !== 'string' || payload.oid === '') {
      throw invalid("The access token has no 'oid' claim.");
    }
    const scopes = typeof payload.scp === 'string' ? payload.scp.split(' ') : [];
    if (!accepted.some((scope) => scopes.includes(scope))) {
      throw new Problem(403, `The access token lacks the ${accepted[0]} scope.`, {
        'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${accepted[0]}"`,
      });
    }
    const challenge = claimsRequirements.challengeFor(path, payload);
    if (challenge !== undefined) {
      throw new Problem(
        401,
        'The access token lacks the authentication context this route needs.',
        { 'WWW-Authenticate': challenge },
      );
    }
    return payload.oid;
  }

  async function readJson(req: IncomingMessage): Promise<unknown> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (type !== 'application/json' && !type.endsWith('+json')) {
      throw new Problem(415, 'The body must be sent as application/json.');
    }
    // Drain the whole body even past the limit so the client reads our 413 instead of a reset.
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= maxBodyBytes) chunks.push(chunk);
    }
    if (size > maxBodyBytes) {
      throw new Problem(413, `The body must be at most ${maxBodyBytes} bytes.`);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new Problem(400, 'The body is not valid JSON.');
    }
  }

  async function handleTodos(req: IncomingMessage, res: ServerResponse, path: string) {
    log.push({ method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers } });
    if (log.length > MAX_LOGGED_REQUESTS) log.shift();
    counters.requests += 1;
    res.on('finish', () => {
      counters.byStatus[res.statusCode] = (counters.byStatus[res.statusCode] ?? 0) + 1;
    });

    const slow = takeFault(req, 'slow');
    if (slow) await delay(slow.delayMs, undefined, { signal: closing.signal });
    if (takeFault(req, 'down')) {
      req.socket.destroy();
      return;
    }
    const status = takeFault(req, 'status');
    if (status) {
      const retryAfter = status.retryAfter;
      throw new Problem(
        status.status,
        'The API failed (injected fault).',
        retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) },
      );
    }

    const match = /^\/api\/todolist(?:\/([^/]+))?$/.exec(path);
    if (!match) throw new Problem(404, 'No such route.');
    const id = match[1];
    const method = req.method ?? '';
    checkMethod(res, method, id === undefined ? COLLECTION_METHODS : ITEM_METHODS);

    const owner = await authenticate(
      req,
      method === 'GET' ? [readScope, writeScope] : [writeScope],
      path,
    );
    const items = store.get(owner) ?? new Map<string, TodoItem>();
    store.set(owner, items);
    const find = (itemId: string) => {
      const item = items.get(itemId);
      // Another user's id gets the same 404 as a missing one, so ids reveal nothing.
      if (!item) throw new Problem(404, 'No to-do item has this id.');
      return item;
    };

    if (id === undefined) {
      if (method === 'GET') return send(res, 200, [...items.values()]);
      const item = { id: randomUUID(), owner, description: readDescription(await readJson(req)) };
      items.set(item.id, item);
      saveItems();
      return send(res, 201, item, { Location: `/api/todolist/${item.id}` });
    }
    switch (method) {
      case 'GET':
        return send(res, 200, find(id));
      case 'DELETE':
        find(id);
        items.delete(id);
        saveItems();
        return send(res, 204);
      default: {
        const body = await readJson(req);
        const unchanged = method === 'PATCH' && isObject(body) && !('description' in body);
        const description = unchanged ? undefined : readDescription(body);
        const item = find(id);
        item.description = description ?? item.description;
        saveItems();
        return send(res, 200, item);
      }
    }
  }

  async function handleAdmin(req: IncomingMessage, res: ServerResponse, path: string) {
    if (!/^(127\.|::1$|::ffff:127\.)/.test(req.socket.remoteAddress ?? '')) {
      throw new Problem(403, 'The admin surface answers loopback callers only.');
    }
    const allowed = ADMIN_ROUTES[path];
    if (!allowed) throw new Problem(404, 'No such route.');
    const method = req.method ?? '';
    checkMethod(res, method, allowed);
    switch (`${method} ${path}`) {
      case 'POST /_api/faults':
        setFault(await readJson(req));
        return send(res, 204);
      case 'DELETE /_api/faults': {
        // `?oid=` clears one user's faults only.
        const oid = new URL(req.url ?? '/', 'http://localhost').searchParams.get('oid');
        clearFaults(oid ?? undefined);
        return send(res, 204);
      }
      case 'GET /_api/requests':
        return send(res, 200, log);
      case 'GET /_api/counters':
        return send(res, 200, counters);
      case 'GET /_api/claims-challenges':
        return send(res, 200, claimsRequirements.list());
      case 'POST /_api/claims-challenges':
        try {
          claimsRequirements.add(await readJson(req));
        } catch (error) {
          if (error instanceof BadRequirementError) throw new Problem(400, error.message);
          throw error;
        }
        return send(res, 204);
      case 'DELETE /_api/claims-challenges':
        claimsRequirements.clear();
        return send(res, 204);
      default: // POST /_api/reset, the only pair checkMethod lets through
        reset();
        return send(res, 204);
    }
  }

  function reset(): void {
    store.clear();
    saveItems();
    faults.clear();
    claimsRequirements.clear();
    log = [];
    counters = newCounters();
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const handler = path.startsWith('/_api/') ? handleAdmin : handleTodos;
    handler(req, res, path).catch((err: unknown) => {
      if (res.headersSent || closing.signal.aborted) return res.destroy();
      if (err instanceof Problem) return sendProblem(res, err);
      console.error('todolist-api: request failed:', err);
      sendProblem(res, new Problem(500, 'The API failed unexpectedly.'));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closed: Promise<void> | undefined;
  return {
    origin,
    endpoint: `${origin}/api/todolist`,
    requests: () => structuredClone(log),
    counters: () => structuredClone(counters),
    setFault,
    clearFaults,
    requireClaims: (requirement) => claimsRequirements.add(requirement),
    clearClaimsRequirements: () => claimsRequirements.clear(),
    reset,
    close: () =>
      (closed ??= new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((err) => (err ? reject(err) : resolve()));
        // close() ends idle keep-alive sockets itself but waits for requests still in flight.
        server.closeAllConnections();
      })),
  };
}

/** The items kept in `file`, by owner; none when there is no file yet. */
function loadItems(file: string | undefined): Map<string, Map<string, TodoItem>> {
  const byOwner = new Map<string, Map<string, TodoItem>>();
  if (file === undefined) return byOwner;
  let items: TodoItem[];
  try {
    items = JSON.parse(readFileSync(file, 'utf8')) as TodoItem[];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return byOwner;
    throw new Error(`cannot read the to-do items in ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  for (const item of items) {
    const owned = byOwner.get(item.owner) ?? new Map<string, TodoItem>();
    owned.set(item.id, item);
    byOwner.set(item.owner, owned);
  }
  return byOwner;
}

function newCounters(): TodoListApiCounters {
  return { requests: 0, byStatus: {}, faults: { down: 0, slow: 0, status: 0, reject_token: 0 } };
}

function faultKey(mode: FaultMode, oid: string | undefined): string {
  return `${mode} ${oid ?? '*'}`;
}

/**
 * The `oid` claim of the request's bearer token, read without verifying it: it only picks which
 * injected fault applies, as faults stand for the API failing before it checks the token.
 */
function unverifiedOid(req: IncomingMessage): string | undefined {
  const [scheme, token] = (req.headers.authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'bearer' || token === undefined) return undefined;
  try {
    const payload: unknown = JSON.parse(
      Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'),
    );
    return isObject(payload) && typeof payload.oid === 'string' ? payload.oid : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkMethod(res: ServerResponse, method: string, allowed: string[]): void {
  if (!allowed.includes(method)) {
    res.setHeader('Allow', allowed.join(', '));
    throw new Problem(405, `Use ${allowed.join(', ')} on this route.`);
  }
}

function readDescription(body: unknown): string {
  if (!isObject(body)) throw new Problem(400, 'The body must be a JSON object.');
  const { description } = body;
  if (
    typeof description === 'string' &&
    description.trim() !== '' &&
    description.length <= MAX_DESCRIPTION_LENGTH
  ) {
    return description;
  }
  const error =
    description === undefined
      ? 'The description is required.'
      : typeof description !== 'string'
        ? 'The description must be a string.'
        : description.trim() === ''
          ? 'The description must not be empty.'
          : `The description must be at most ${MAX_DESCRIPTION_LENGTH} characters.`;
  throw new Problem(400, 'One or more validation errors occurred.', {}, { description: [error] });
}

function parseFault(value: unknown): Fault {
  if (!isObject(value)) throw new Problem(400, 'A fault must be a JSON object.');
  const { mode, count, oid } = value;
  if (count !== undefined && !(Number.isInteger(count) && (count as number) > 0)) {
    throw new Problem(400, 'A fault count must be a positive integer.');
  }
  if (oid !== undefined && (typeof oid !== 'string' || oid === '')) {
    throw new Problem(400, 'A fault oid must be a non-empty string.');
  }
  const limit = {
    ...(count === undefined ? {} : { count: count as number }),
    ...(oid === undefined ? {} : { oid }),
  };
  switch (mode) {
    case 'down':
    case 'reject_token':
      return { mode, ...limit };
    case 'slow':
      if (!(Number.isInteger(value.delayMs) && (value.delayMs as number) >= 0)) {
        throw new Problem(400, 'A slow fault needs delayMs, a non-negative integer.');
      }
      return { mode, delayMs: value.delayMs as number, ...limit };
    case 'status': {
      const { status, retryAfter } = value;
      if (!(Number.isInteger(status) && (status as number) >= 400 && (status as number) <= 599)) {
        throw new Problem(400, 'A status fault needs status, an integer from 400 to 599.');
      }
      if (
        retryAfter !== undefined &&
        typeof retryAfter !== 'number' &&
        typeof retryAfter !== 'string'
      ) {
        throw new Problem(
          400,
          'A status fault retryAfter must be a number of seconds or an HTTP date.',
        );
      }
      return {
        mode,
        status: status as number,
        ...(retryAfter === undefined ? {} : { retryAfter }),
        ...limit,
      };
    }
    default:
      throw new Problem(400, 'A fault mode must be down, slow, status or reject_token.');
  }
}

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
  contentType = 'application/json',
): void {
  const text = body === undefined ? undefined : JSON.stringify(body);
  res.writeHead(status, {
    'Cache-Control': 'no-store',
    ...(text === undefined
      ? {}
      : { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(text)) }),
    ...headers,
  });
  res.end(text);
}

// RFC 9457 problem details; `detail` is always one of our own fixed sentences.
function sendProblem(res: ServerResponse, problem: Problem): void {
  const body = {
    type: 'about:blank',
    title: STATUS_CODES[problem.status] ?? 'Error',
    status: problem.status,
    detail: problem.message,
    ...(problem.errors ? { errors: problem.errors } : {}),
  };
  send(res, problem.status, body, problem.headers, 'application/problem+json');
}

// A fetch for jose that trusts one more CA, without touching process-wide TLS settings.
export function fetchTrusting(caCertPem: string): FetchImplementation {
  const ca = [...rootCertificates, caCertPem];
  return (url, { signal }) =>
    new Promise<Response>((resolve, reject) => {
      const request = httpsRequest(url, { ca, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve(
            new Response(Buffer.concat(chunks).toString('utf8'), {
              status: res.statusCode ?? 502,
            }),
          ),
        );
      });
      request.on('error', reject);
      request.end();
    });
}
