// A second sample API for the offline stack, behind `/api/notes`: notes kept per `oid` in memory
// (and in a file when asked), bearer JWTs checked against the emulator's JWKS for an audience and
// scopes of its own (not the ToDoList API's), and an admin surface that logs what arrived and
// scripts the next answers, so the proxy's rules for any API (paths, headers, bodies, answers) can
// be tested end to end.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer, STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload } from 'jose';
import {
  BadRequirementError,
  ClaimsRequirements,
  type ClaimsRequirement,
} from '../todolist-api/claims-challenge.mts';
import { fetchTrusting } from '../todolist-api/todolist-api.mts';

export interface NotesApiOptions {
  /** Expected `iss`. */
  issuer: string;
  jwksUri: string;
  /** Expected `aud`: this API's client id in the emulator. */
  audience: string;
  caCertPem?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  readScope?: string;
  writeScope?: string;
  /** Keeps the notes in this JSON file, read at start and rewritten after every change. */
  dataFile?: string;
  /** Routes that need an authentication context (`acrs`) from the start (see claims-challenge.mts). */
  claimsRequirements?: ClaimsRequirement[];
}

interface Note {
  id: string;
  text: string;
}

/** One request as it reached the API: the raw target, every header, the body's bytes. */
export interface NotesApiRequest {
  method: string;
  /** `req.url` as sent: path and query, not decoded. */
  target: string;
  headers: IncomingHttpHeaders;
  bodyBase64: string;
  /** The verified token's `aud` and `scp`, when it verified. */
  audience?: string;
  scopes?: string;
}

/** An answer the next `count` authenticated requests get instead of the notes routes'. */
export interface ScriptedAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  count?: number;
}

export interface NotesApi {
  origin: string;
  /** `${origin}/v1`: the value for DOWNSTREAM_API_NOTES_URL. */
  endpoint: string;
  requests(): NotesApiRequest[];
  script(answer: ScriptedAnswer): void;
  /** Makes calls need an `acrs` value in their token, else a claims challenge (claims-challenge.mts). */
  requireClaims(requirement: ClaimsRequirement): void;
  /** Clears notes, scripted answers, claims requirements and the request log. */
  reset(): void;
  close(): Promise<void>;
}

const MAX_LOGGED_REQUESTS = 200;
const MAX_BODY_BYTES = 4 * 1024 * 1024;

class Problem extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, detail: string, headers: Record<string, string> = {}) {
    super(detail);
    this.status = status;
    this.headers = headers;
  }
}

export async function startNotesApi(options: NotesApiOptions): Promise<NotesApi> {
  const readScope = options.readScope ?? 'Notes.Read';
  const writeScope = options.writeScope ?? 'Notes.Write';
  const jwks = createRemoteJWKSet(
    new URL(options.jwksUri),
    options.caCertPem === undefined ? {} : { [customFetch]: fetchTrusting(options.caCertPem) },
  );
  const notes = loadNotes(options.dataFile);
  const saveNotes = () => {
    if (options.dataFile === undefined) return;
    mkdirSync(dirname(options.dataFile), { recursive: true });
    const temporary = `${options.dataFile}.${process.pid}.tmp`;
    const rows = [...notes].flatMap(([owner, mine]) =>
      [...mine.values()].map((note) => ({ owner, ...note })),
    );
    writeFileSync(temporary, JSON.stringify(rows));
    renameSync(temporary, options.dataFile);
  };
  let log: NotesApiRequest[] = [];
  let scripted: (ScriptedAnswer & { remaining: number }) | undefined;
  const claimsRequirements = new ClaimsRequirements(
    options.issuer,
    options.claimsRequirements ?? [],
  );

  async function authenticate(req: IncomingMessage, entry: NotesApiRequest): Promise<string> {
    const [scheme, token, ...rest] = (req.headers.authorization ?? '').split(' ');
    if (scheme?.toLowerCase() !== 'bearer' || !token || rest.length > 0) {
      throw new Problem(401, 'An access token is required.', { 'WWW-Authenticate': 'Bearer' });
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ['RS256'],
        requiredClaims: ['exp'],
      }));
    } catch {
      throw new Problem(401, 'The access token could not be verified.', {
        'WWW-Authenticate': 'Bearer error="invalid_token"',
      });
    }
    entry.audience = typeof payload.aud === 'string' ? payload.aud : JSON.stringify(payload.aud);
    entry.scopes = typeof payload.scp === 'string' ? payload.scp : '';
    const scopes = entry.scopes.split(' ');
    const read = req.method === 'GET' || req.method === 'HEAD';
    const accepted = read ? [readScope, writeScope] : [writeScope];
    if (!accepted.some((scope) => scopes.includes(scope))) {
      throw new Problem(403, `The access token lacks the ${accepted[0]} scope.`, {
        'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${accepted[0]}"`,
      });
    }
    if (typeof payload.oid !== 'string') throw new Problem(401, "The token has no 'oid' claim.");
    const challenge = claimsRequirements.challengeFor((req.url ?? '').split('?')[0] ?? '', payload);
    if (challenge !== undefined) {
      throw new Problem(
        401,
        'The access token lacks the authentication context this route needs.',
        {
          'WWW-Authenticate': challenge,
        },
      );
    }
    return payload.oid;
  }

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    }
    if (size > MAX_BODY_BYTES) throw new Problem(413, 'The body is too large.');
    return Buffer.concat(chunks);
  }

  async function handleNotes(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const entry: NotesApiRequest = {
      method: req.method ?? '',
      target: req.url ?? '',
      headers: { ...req.headers },
      bodyBase64: body.toString('base64'),
    };
    log.push(entry);
    if (log.length > MAX_LOGGED_REQUESTS) log.shift();
    const owner = await authenticate(req, entry);

    if (scripted !== undefined) {
      const answer = scripted;
      if (--answer.remaining <= 0) scripted = undefined;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body);
      return;
    }
    const path = (req.url ?? '').split('?')[0] ?? '';
    const match = /^\/v1\/notes(?:\/([A-Za-z0-9-]+))?$/.exec(path);
    if (!match) throw new Problem(404, 'No such route.');
    const id = match[1];
    const mine = notes.get(owner) ?? new Map<string, Note>();
    notes.set(owner, mine);
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (id === undefined && method === 'GET') return json(res, 200, [...mine.values()]);
    if (id === undefined && method === 'POST') {
      const note = { id: randomUUID(), text: textOf(body) };
      mine.set(note.id, note);
      saveNotes();
      return json(res, 201, note, { Location: `/v1/notes/${note.id}` });
    }
    const note = id === undefined ? undefined : mine.get(id);
    if (id === undefined) throw new Problem(405, 'Use GET or POST.', { Allow: 'GET, HEAD, POST' });
    if (note === undefined) throw new Problem(404, 'No note has this id.');
    if (method === 'GET') return json(res, 200, note);
    if (method === 'PUT') {
      note.text = textOf(body);
      saveNotes();
      return json(res, 200, note);
    }
    if (method === 'DELETE') {
      mine.delete(note.id);
      saveNotes();
      res.writeHead(204).end();
      return;
    }
    throw new Problem(405, 'Use GET, PUT or DELETE.', { Allow: 'GET, HEAD, PUT, DELETE' });
  }

  async function handleAdmin(req: IncomingMessage, res: ServerResponse, path: string) {
    if (!/^(127\.|::1$|::ffff:127\.)/.test(req.socket.remoteAddress ?? '')) {
      throw new Problem(403, 'The admin surface answers loopback callers only.');
    }
    const route = `${req.method} ${path}`;
    if (route === 'GET /_api/requests') return json(res, 200, log);
    if (route === 'POST /_api/reset') {
      reset();
      res.writeHead(204).end();
      return;
    }
    if (route === 'POST /_api/claims-challenges') {
      try {
        claimsRequirements.add(JSON.parse((await readBody(req)).toString('utf8')));
      } catch (error) {
        if (error instanceof BadRequirementError || error instanceof SyntaxError) {
          throw new Problem(400, error.message);
        }
        throw error;
      }
      res.writeHead(204).end();
      return;
    }
    if (route === 'DELETE /_api/claims-challenges') {
      claimsRequirements.clear();
      res.writeHead(204).end();
      return;
    }
    if (route === 'POST /_api/answers') {
      script(JSON.parse((await readBody(req)).toString('utf8')) as ScriptedAnswer);
      res.writeHead(204).end();
      return;
    }
    throw new Problem(404, 'No such route.');
  }

  function script(answer: ScriptedAnswer): void {
    if (!Number.isInteger(answer.status) || answer.status < 200 || answer.status > 599) {
      throw new Problem(400, 'A scripted answer needs a status from 200 to 599.');
    }
    scripted = { ...answer, remaining: answer.count ?? 1 };
  }

  function reset(): void {
    notes.clear();
    saveNotes();
    log = [];
    scripted = undefined;
    claimsRequirements.clear();
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const handler = path.startsWith('/_api/') ? handleAdmin(req, res, path) : handleNotes(req, res);
    handler.catch((error: unknown) => {
      const problem = error instanceof Problem ? error : new Problem(500, 'The notes API failed.');
      if (!res.headersSent) {
        json(
          res,
          problem.status,
          {
            type: 'about:blank',
            title: STATUS_CODES[problem.status] ?? 'Error',
            status: problem.status,
            detail: problem.message,
          },
          problem.headers,
          'application/problem+json',
        );
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${options.host ?? '127.0.0.1'}:${port}`;
  return {
    origin,
    endpoint: `${origin}/v1`,
    requests: () => structuredClone(log),
    script,
    requireClaims: (requirement) => claimsRequirements.add(requirement),
    reset,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function loadNotes(file: string | undefined): Map<string, Map<string, Note>> {
  const byOwner = new Map<string, Map<string, Note>>();
  if (file === undefined) return byOwner;
  let rows: (Note & { owner: string })[];
  try {
    rows = JSON.parse(readFileSync(file, 'utf8')) as (Note & { owner: string })[];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return byOwner;
    throw new Error(`cannot read the notes in ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  for (const { owner, id, text } of rows) {
    const mine = byOwner.get(owner) ?? new Map<string, Note>();
    mine.set(id, { id, text });
    byOwner.set(owner, mine);
  }
  return byOwner;
}

function textOf(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { text?: unknown };
    if (typeof parsed.text === 'string' && parsed.text.length <= 10_000) return parsed.text;
  } catch {
    // Refused below.
  }
  throw new Problem(400, 'A note is JSON {"text": "..."} of at most 10,000 characters.');
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = 'application/json',
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}
