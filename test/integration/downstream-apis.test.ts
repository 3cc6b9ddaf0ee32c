import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEV_IDENTITIES, NOTES_API_SCOPES } from '../../dev/dev-settings.mts';
import type { EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import type { NotesApi, NotesApiRequest } from '../../dev/notes-api/notes-api.mts';
import type { TodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import { signInThroughApp } from '../support/app-session.ts';
import { startTwoApiStack, type TwoApiStack } from '../support/two-api-stack.ts';
import { UserAgent } from '../support/user-agent.ts';
import { requestAsWritten, type Answer } from '../security/support/http.ts';

// The general proxy `/api/<name>` (DESIGN.md "Downstream APIs") on the real stack: the emulator,
// Azurite, the local host running the built app, the ToDoList API as `todos` and the notes API as
// `notes`, all of this file's own so their logs see no other file's traffic.
const SESSION_COOKIE = '__Host-bff-session';
const { read: NOTES_READ, write: NOTES_WRITE } = NOTES_API_SCOPES;
// The notes API's own registration: tokens for it carry this audience, never the ToDoList API's.
const NOTES_CLIENT_ID = DEV_IDENTITIES.notesApiClientId;

const user = {
  oid: '7e57e57e-0000-4000-a000-000000000001',
  name: 'Dora Downstream',
  preferred_username: 'dora@downstream.example',
};

let twoApis: TwoApiStack;
let emulator: EntraEmulator;
let todos: TodoListApi;
let notes: NotesApi;
let origin: string;

beforeAll(async () => {
  twoApis = await startTwoApiStack({ users: [user] });
  ({ emulator, todos, notes, origin } = twoApis);
});

afterAll(async () => {
  await twoApis?.stop();
});

beforeEach(() => {
  notes.reset();
});

/** One request exactly as written: the path is not normalized and any header may be sent. */
function send(path: string, options?: Parameters<typeof requestAsWritten>[2]): Promise<Answer> {
  return requestAsWritten(origin, path, options);
}

const agent = new UserAgent();

function asPage(headers: Record<string, string> = {}): Record<string, string> {
  return {
    cookie: `${SESSION_COOKIE}=${agent.cookies(origin).get(SESSION_COOKIE) ?? ''}`,
    'x-csrf': '1',
    'sec-fetch-site': 'same-origin',
    origin,
    ...headers,
  };
}

function call(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  return send(path, { method, headers: asPage(options.headers), body: options.body });
}

function tokenRequests(): number {
  return Object.values(emulator.counters().token).reduce((sum, count) => sum + count, 0);
}

function expectProblem(answer: Answer, status: number): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers['content-type']).toBe('application/problem+json');
  expect(answer.json).toMatchObject({ type: 'about:blank', status });
  expect(answer.text).not.toMatch(/\bat .+:\d+:\d+|eyJ|Bearer|secret/i);
  expect(answer.headers['cache-control']).toBe('no-store');
}

function claimsOf(request: NotesApiRequest): Record<string, unknown> {
  const token = String(request.headers.authorization).split(' ')[1] ?? '';
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
    string,
    unknown
  >;
}

// Consent is tenant-wide: one sign-in serves the read and write scopes of every API.
beforeAll(async () => {
  await signInThroughApp(agent, origin, user.preferred_username);
});

describe('one registration serves every configured API', () => {
  it('/api/todos keeps the ToDoList contract and /api/notes reaches the notes API', async () => {
    const todo = await call('POST', '/api/todos', {
      headers: { 'content-type': 'application/json' },
      body: '{"description":"both"}',
    });
    expect(todo.status, todo.text).toBe(201);
    expect(todo.headers.location).toBe(`/api/todos/${String(todo.json.id)}`);
    expect((await call('GET', '/api/todos')).json).toEqual([todo.json]);
    const head = await call('HEAD', '/api/todos');
    expect(head.status).toBe(405);
    expect(head.headers.allow).toBe('GET, POST');

    const note = await call('POST', '/api/notes/notes', {
      headers: { 'content-type': 'application/json' },
      body: '{"text":"hello"}',
    });
    expect(note.status, note.text).toBe(201);
    expect(note.headers.location).toBe(`/api/notes/notes/${String(note.json.id)}`);
    expect((await call('GET', '/api/notes/notes')).json).toEqual([note.json]);
    expect(notes.requests().map(({ method, target }) => `${method} ${target}`)).toEqual([
      'POST /v1/notes',
      'GET /v1/notes',
    ]);
  });

  it('an unknown name: 404 before any session or token work, with or without a session', async () => {
    const before = tokenRequests();
    for (const path of ['/api/orders', '/api/orders/x', '/api/todos-v2/x', '/api/no_such']) {
      expectProblem(await call('GET', path), 404);
      expectProblem(await send(path, { headers: { 'x-csrf': '1' } }), 404);
    }
    expect(tokenRequests()).toBe(before);
    expect(notes.requests()).toEqual([]);
  });

  it('refuses a call without X-CSRF or from another site: 403, nothing sent', async () => {
    expectProblem(await send('/api/notes/notes', { headers: { ...asPage(), 'x-csrf': '' } }), 403);
    expectProblem(
      await send('/api/notes/notes', { headers: asPage({ 'sec-fetch-site': 'cross-site' }) }),
      403,
    );
    expectProblem(
      await send('/api/notes/notes', { headers: asPage({ origin: 'http://evil.example' }) }),
      403,
    );
    expect(notes.requests()).toEqual([]);
  });

  it('without a session: 401 with a loginUrl, nothing sent', async () => {
    const answer = await send('/api/notes/notes', { headers: { 'x-csrf': '1' } });
    expectProblem(answer, 401);
    expect(answer.json.loginUrl).toMatch(/^\/auth\/signin\?/);
    expect(notes.requests()).toEqual([]);
  });
});

describe('one token per API', () => {
  it('the token sent to each API has that API’s audience and scopes only, whatever was called before', async () => {
    todos.reset();
    notes.script({ status: 200, count: 2 });
    await call('GET', '/api/todos');
    await call('GET', '/api/notes/notes');
    await call('POST', '/api/todos', {
      headers: { 'content-type': 'application/json' },
      body: '{"description":"after notes"}',
    });
    await call('DELETE', '/api/notes/notes/1');
    const todoClaims = todos.requests().map(({ headers }) => {
      const token = String(headers.authorization).split(' ')[1] ?? '';
      return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
        string,
        unknown
      >;
    });
    expect(todoClaims.map(({ aud, scp }) => [aud, scp])).toEqual([
      [DEV_IDENTITIES.apiClientId, 'ToDoList.Read'],
      [DEV_IDENTITIES.apiClientId, 'ToDoList.ReadWrite'],
    ]);
    expect(
      notes.requests().map((request) => [claimsOf(request).aud, claimsOf(request).scp]),
    ).toEqual([
      [NOTES_CLIENT_ID, NOTES_READ],
      [NOTES_CLIENT_ID, NOTES_WRITE],
    ]);
    // Each API verifies its own audience: a token for one is refused by the other (the notes API
    // logged only tokens it accepted, so none of the ToDoList tokens reached it as valid).
    expect(notes.requests().every((request) => request.audience === NOTES_CLIENT_ID)).toBe(true);
  });
});

describe('the general proxy forwards', () => {
  it('each method with the read scopes for GET and HEAD, the write scopes for the rest', async () => {
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      notes.script({ status: 200, headers: { 'content-type': 'text/plain' }, body: method });
      const answer = await call(method, '/api/notes/anything/here?x=1', {
        ...(['GET', 'HEAD'].includes(method) ? {} : { body: `body of ${method}` }),
      });
      expect(answer.status, `${method} ${answer.text}`).toBe(200);
      expect(answer.text).toBe(method === 'HEAD' ? '' : method);
    }
    const seen = notes.requests();
    expect(seen.map(({ method, target }) => `${method} ${target}`)).toEqual(
      ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].map(
        (method) => `${method} /v1/anything/here?x=1`,
      ),
    );
    for (const request of seen) {
      const claims = claimsOf(request);
      expect(claims.aud).toBe(NOTES_CLIENT_ID);
      expect(claims.oid).toBe(user.oid);
      const read = request.method === 'GET' || request.method === 'HEAD';
      expect(String(claims.scp).split(' ')).toEqual([read ? NOTES_READ : NOTES_WRITE]);
      expect(Buffer.from(request.bodyBase64, 'base64').toString()).toBe(
        read ? '' : `body of ${request.method}`,
      );
    }
  });

  it('only the allow-listed request headers, and its own Authorization', async () => {
    const allowed = {
      accept: 'application/vnd.notes+json',
      'accept-language': 'fr-CH',
      'content-type': 'application/merge-patch+json',
      'if-match': '"v1"',
      'if-none-match': '"v0"',
      'if-modified-since': 'Wed, 21 Oct 2015 07:28:00 GMT',
      prefer: 'return=minimal',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'congo=t61rcWkgMzE',
    };
    const hostile = {
      authorization: 'Bearer caller-supplied-token',
      'proxy-authorization': 'Basic c2VjcmV0',
      connection: 'keep-alive, x-hop',
      'x-hop': 'hop-by-hop',
      te: 'trailers',
      'keep-alive': 'timeout=5',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-for': '10.0.0.1',
      forwarded: 'host=evil.example',
      'x-ms-client-principal': 'eyJhZG1pbiI6dHJ1ZX0=',
      'x-custom': 'custom',
      'user-agent': 'page',
      referer: 'http://localhost/secret-page',
    };
    notes.script({ status: 204 });
    const answer = await call('PATCH', '/api/notes/n', {
      headers: { ...allowed, ...hostile },
      body: '{"text":"x"}',
    });
    expect(answer.status, answer.text).toBe(204);
    const [request] = notes.requests();
    expect(request?.headers).toMatchObject(allowed);
    const extra = Object.keys(request?.headers ?? {}).filter(
      (name) =>
        !(name in allowed) &&
        !['host', 'authorization', 'content-length', 'accept-encoding', 'connection'].includes(
          name,
        ),
    );
    expect(extra).toEqual([]);
    expect(request?.headers.cookie).toBeUndefined();
    expect(request?.headers.authorization).not.toContain('caller-supplied-token');
    expect(request?.headers.connection).toBe('keep-alive');
  });

  it('paths segment by segment, encoded once: spaces, unicode, literal percent signs, and the query as sent', async () => {
    notes.script({ status: 200, count: 3 });
    await call('GET', '/api/notes/a%20b/%C3%A9t%C3%A9/100%25?q=a%20b&q=c&empty=&x=%2F');
    await call('GET', '/api/notes');
    await call('GET', '/api/notes/');
    expect(notes.requests().map(({ target }) => target)).toEqual([
      '/v1/a%20b/%C3%A9t%C3%A9/100%25?q=a%20b&q=c&empty=&x=%2F',
      '/v1',
      '/v1',
    ]);
  });

  it('a body of up to 1 MiB byte for byte, with its Content-Type', async () => {
    const body = randomBytes(1024 * 1024);
    notes.script({
      status: 200,
      headers: { 'content-type': 'application/octet-stream' },
      body: 'ok',
    });
    const answer = await call('PUT', '/api/notes/blob', {
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    expect(answer.status, answer.text).toBe(200);
    const [request] = notes.requests();
    expect(Buffer.from(request?.bodyBase64 ?? '', 'base64').equals(body)).toBe(true);
    expect(request?.headers['content-type']).toBe('application/octet-stream');
  });
});

describe('the general proxy refuses before sending anything', () => {
  const hostilePaths: [string, number][] = [
    ['/api/notes/a//b', 400],
    ['/api/notes/a/', 400],
    ['/api/notes/a/%2e', 400],
    ['/api/notes/a%2Fb', 400],
    ['/api/notes/a%2fb', 400],
    ['/api/notes/a%5Cb', 400],
    ['/api/notes/a\\b', 400],
    ['/api/notes/a%00b', 400],
    ['/api/notes/a%0D%0Ab', 400],
    ['/api/notes/a%7Fb', 400],
    ['/api/notes/a%09b', 400],
    [`/api/notes/${Array.from({ length: 33 }, () => 's').join('/')}`, 400],
    [`/api/notes/${'p'.repeat(2049)}`, 400],
    [`/api/notes/x?${'q'.repeat(4097)}`, 400],
  ];
  it.each(hostilePaths)('%s: %i', async (path, status) => {
    const before = tokenRequests();
    expectProblem(await call('GET', path), status);
    expect(notes.requests()).toEqual([]);
    expect(tokenRequests()).toBe(before);
  });

  // Kestrel decodes the path and then removes dot segments (PathNormalizer in dotnet/aspnetcore's
  // Kestrel), as the local host's URL parser does: an encoded `..` climbs out of `/api/notes` before
  // routing, to a name that is not configured.
  it.each(['/api/notes/%2e%2e/x', '/api/notes/.%2E/x', '/api/notes/a/%2e%2e/%2e%2e/x'])(
    '%s: never reaches the API',
    async (path) => {
      expectProblem(await call('GET', path), 404);
      expect(notes.requests()).toEqual([]);
    },
  );

  it('the largest allowed shapes still pass: 32 segments, 2,048 characters of path, 4,096 of query', async () => {
    notes.script({ status: 200, count: 3 });
    const segments = Array.from({ length: 32 }, () => 's').join('/');
    expect((await call('GET', `/api/notes/${segments}`)).status).toBe(200);
    expect((await call('GET', `/api/notes/${'p'.repeat(2048)}`)).status).toBe(200);
    expect((await call('GET', `/api/notes/x?${'q'.repeat(4096)}`)).status).toBe(200);
    expect(notes.requests()).toHaveLength(3);
  });

  it('a body past 1 MiB: 413', async () => {
    const answer = await call('POST', '/api/notes/blob', {
      headers: { 'content-type': 'application/octet-stream' },
      body: randomBytes(1024 * 1024 + 1),
    });
    expectProblem(answer, 413);
    expect(notes.requests()).toEqual([]);
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])('%s with a chunked body: 411', async (method) => {
    const answer = await send('/api/notes/blob', {
      method,
      headers: asPage({ 'transfer-encoding': 'chunked', 'content-type': 'text/plain' }),
      body: 'chunked body',
    });
    expectProblem(answer, 411);
    expect(notes.requests()).toEqual([]);
  });

  it('a method the proxy does not forward: 405 with Allow', async () => {
    const answer = await call('OPTIONS', '/api/notes/x');
    expectProblem(answer, 405);
    expect(answer.headers.allow).toBe('GET, HEAD, POST, PUT, PATCH, DELETE');
    expect(notes.requests()).toEqual([]);
  });
});

describe('the general proxy answers', () => {
  it('with the API’s status and body and only the allow-listed headers, always no-store', async () => {
    notes.script({
      status: 201,
      headers: {
        'Content-Type': 'text/csv; charset=utf-8',
        'Content-Language': 'de',
        'Content-Disposition': 'attachment; filename="notes.csv"',
        ETag: '"v7"',
        'Last-Modified': 'Wed, 21 Oct 2015 07:28:00 GMT',
        Location: `${notes.endpoint}/notes/42?view=full`,
        'Set-Cookie': 'api=1; Path=/',
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Credentials': 'true',
        'WWW-Authenticate': 'Bearer',
        'Cache-Control': 'public, max-age=3600',
        'Retry-After': '5',
        'X-Powered-By': 'notes',
        'Strict-Transport-Security': 'max-age=1',
      },
      body: 'a,b\n1,2\n',
    });
    const answer = await call('POST', '/api/notes/export', { body: 'x' });
    expect(answer.status).toBe(201);
    expect(answer.text).toBe('a,b\n1,2\n');
    expect(answer.headers).toMatchObject({
      'content-type': 'text/csv; charset=utf-8',
      'content-language': 'de',
      'content-disposition': 'attachment; filename="notes.csv"',
      etag: '"v7"',
      'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT',
      location: '/api/notes/notes/42?view=full',
      'cache-control': 'no-store',
    });
    for (const name of [
      'set-cookie',
      'access-control-allow-origin',
      'access-control-allow-credentials',
      'www-authenticate',
      'retry-after',
      'x-powered-by',
      'strict-transport-security',
    ]) {
      expect(answer.headers[name], name).toBeUndefined();
    }
  });

  it.each([
    ['another origin', 'https://evil.example/v1/notes/1'],
    ['the API origin outside its URL', '/v2/notes/1'],
    ['a path climbing out of it', '/v1/../admin'],
    ['a scheme-relative URL', '//evil.example/v1/x'],
  ])('drops a Location to %s', async (_case, location) => {
    notes.script({ status: 201, headers: { Location: location } });
    const answer = await call('POST', '/api/notes/notes', { body: 'x' });
    expect(answer.status).toBe(201);
    expect(answer.headers.location).toBeUndefined();
  });

  it.each([429, 503])('passes Retry-After on with a %i', async (status) => {
    notes.script({
      status,
      headers: { 'Retry-After': '7', 'Content-Type': 'text/plain' },
      body: 'wait',
    });
    const answer = await call('GET', '/api/notes/x');
    expect(answer.status).toBe(status);
    expect(answer.headers['retry-after']).toBe('7');
    expect(answer.text).toBe('wait');
  });

  it.each([301, 302, 303, 307, 308])('does not follow a %i: 502', async (status) => {
    notes.script({ status, headers: { Location: 'http://127.0.0.1:1/internal' } });
    const answer = await call('GET', '/api/notes/x');
    expectProblem(answer, 502);
    expect(answer.headers.location).toBeUndefined();
    expect(notes.requests()).toHaveLength(1);
  });

  it('keeps an error status and body as the API sent them', async () => {
    notes.script({
      status: 418,
      headers: { 'Content-Type': 'application/problem+json' },
      body: '{"title":"teapot"}',
    });
    const answer = await call('GET', '/api/notes/x');
    expect(answer.status).toBe(418);
    expect(answer.json).toEqual({ title: 'teapot' });
  });

  it('HEAD: the headers without a body', async () => {
    notes.script({
      status: 200,
      headers: { 'Content-Type': 'text/plain', ETag: '"h"' },
      body: 'not sent',
    });
    const answer = await call('HEAD', '/api/notes/x');
    expect(answer.status).toBe(200);
    expect(answer.headers.etag).toBe('"h"');
    expect(answer.body).toHaveLength(0);
  });
});
