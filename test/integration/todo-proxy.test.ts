import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../dev/azurite.mts';
import { DEV_IDENTITIES } from '../../dev/dev-settings.mts';
import type { EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import {
  startTodoListApi,
  type LoggedRequest,
  type TodoListApi,
} from '../../dev/todolist-api/todolist-api.mts';
import { signInThroughApp } from '../support/app-session.ts';
import { testStack } from '../support/stack.ts';
import { startTwoApiStack, type TwoApiStack } from '../support/two-api-stack.ts';
import { UserAgent } from '../support/user-agent.ts';
import { requestAsWritten, type Answer } from '../security/support/http.ts';

// The proxy runs in a stack of this file's own (emulator, both sample APIs, Azurite and app
// process, as the global setup wires them), so its faults, request log and counters see no other
// file's traffic.
const stack = testStack();
const SESSION_COOKIE = '__Host-bff-session';
const TIMEOUT_MS = 1500;
function proxyUser(name: string, index: number) {
  return {
    oid: `7e57e57e-0000-4000-9000-${String(index).padStart(12, '0')}`,
    name: `${name[0]?.toUpperCase()}${name.slice(1)} Proxy`,
    preferred_username: `${name}@proxy.example`,
  };
}
type User = ReturnType<typeof proxyUser>;
const [tess, uma, vic, wes, xia, yan, zed] = ['tess', 'uma', 'vic', 'wes', 'xia', 'yan', 'zed'].map(
  (name, index) => proxyUser(name, index + 1),
) as [User, User, User, User, User, User, User];
const users = [tess, uma, vic, wes, xia, yan, zed];

let twoApis: TwoApiStack;
let emulator: EntraEmulator;
let api: TodoListApi;
let azurite: Azurite;
let origin: string;

beforeAll(async () => {
  twoApis = await startTwoApiStack({
    users,
    env: {
      TODOLIST_TIMEOUT_MS: String(TIMEOUT_MS),
      // Each request here must meet the table as it is now (a store stopped mid-file, rows gone):
      // no session from memory. The recheck window has its own tests (session-recheck.test.ts).
      SESSION_RECHECK_SECONDS: '0',
    },
  });
  ({ emulator, azurite, origin } = twoApis);
  api = twoApis.todos;
});

afterAll(async () => {
  await twoApis?.stop();
  // A test may have restarted these; stopping one twice is harmless.
  await azurite?.stop();
  await api?.close();
});

beforeEach(() => {
  api.clearFaults();
  emulator.clearFaults();
});

/** The ToDoList API again, at the address the app was configured with. */
function restartApi(): Promise<TodoListApi> {
  return startTodoListApi({
    issuer: emulator.issuer,
    jwksUri: emulator.jwksUri,
    audience: DEV_IDENTITIES.apiClientId,
    caCertPem: emulator.caCertPem,
    port: Number(new URL(twoApis.todos.origin).port),
  });
}

/** One request exactly as written: the path is not normalized and any header may be sent. */
function send(path: string, options?: Parameters<typeof requestAsWritten>[2]): Promise<Answer> {
  return requestAsWritten(origin, path, options);
}

/** A signed-in user of the private app: its session cookie, and calls made as its page would. */
class Caller {
  readonly agent = new UserAgent();

  get cookie(): string {
    return `${SESSION_COOKIE}=${this.agent.cookies(origin).get(SESSION_COOKIE) ?? ''}`;
  }

  call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const json = body === undefined ? undefined : JSON.stringify(body);
    return send(path, {
      method,
      headers: {
        cookie: this.cookie,
        'x-csrf': '1',
        'sec-fetch-site': 'same-origin',
        origin,
        ...(json === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(json === undefined ? {} : { body: json }),
    });
  }
}

async function signIn(user: User): Promise<Caller> {
  const caller = new Caller();
  await signInThroughApp(caller.agent, origin, user.preferred_username);
  return caller;
}

function claimsOf(request: LoggedRequest): Record<string, unknown> {
  const [scheme, token = ''] = String(request.headers.authorization).split(' ');
  expect(scheme).toBe('Bearer');
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
    string,
    unknown
  >;
}

function tokenRequests(): number {
  const { token } = emulator.counters();
  return Object.values(token).reduce((sum, count) => sum + count, 0);
}

function expectProblem(answer: Answer, status: number): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers['content-type']).toBe('application/problem+json');
  expect(answer.json).toMatchObject({ type: 'about:blank', status });
  expect(typeof answer.json.title).toBe('string');
  expect(answer.text).not.toMatch(/\bat .+:\d+:\d+|eyJ|Bearer|secret/i);
  expect(answer.headers['cache-control']).toBe('no-store');
  expect(answer.headers['x-content-type-options']).toBe('nosniff');
}

// Headers the proxy sends on purpose, plus what Node's HTTP client adds to any request.
const FORWARDED_HEADERS = new Set([
  'host',
  'authorization',
  'accept',
  'content-type',
  'content-length',
  'accept-encoding',
  'connection',
]);

describe('the to-do proxy', () => {
  let writer: Caller;
  beforeAll(async () => {
    writer = await signIn(tess);
  });

  it('sends each method to its API path with the right scope and only the headers it chose', async () => {
    api.reset();
    const hostile = {
      cookie: `${writer.cookie}; tracking=1`,
      authorization: 'Bearer caller-supplied-token',
      'proxy-authorization': 'Basic c2VjcmV0',
      connection: 'keep-alive, x-hop',
      'x-hop': 'hop-by-hop',
      te: 'trailers',
      'keep-alive': 'timeout=5',
      'x-forwarded-host': 'evil.example',
      forwarded: 'host=evil.example',
      'x-custom': 'custom',
    };
    const created = await writer.call(
      'POST',
      '/api/todos?next=http://evil.example',
      {
        description: 'write the report',
      },
      hostile,
    );
    expect(created.status, created.text).toBe(201);
    const id = String(created.json.id);
    expect(created.json).toMatchObject({ owner: tess.oid, description: 'write the report' });
    expect(created.headers.location).toBe(`/api/todos/${id}`);
    expect(created.headers['content-type']).toBe('application/json');

    const list = await writer.call('GET', '/api/todos', undefined, hostile);
    expect(list.status).toBe(200);
    expect(list.json).toEqual([{ id, owner: tess.oid, description: 'write the report' }]);
    expect((await writer.call('GET', `/api/todos/${id}`, undefined, hostile)).json).toMatchObject({
      id,
    });
    const put = await writer.call('PUT', `/api/todos/${id}`, { description: 'v2' }, hostile);
    expect(put.json).toMatchObject({ id, description: 'v2' });
    const patch = await writer.call('PATCH', `/api/todos/${id}`, { description: 'v3' }, hostile);
    expect(patch.json).toMatchObject({ id, description: 'v3' });
    const deleted = await writer.call('DELETE', `/api/todos/${id}`, undefined, hostile);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');

    const seen = api.requests();
    expect(seen.map(({ method, path }) => `${method} ${path}`)).toEqual([
      'POST /api/todolist',
      'GET /api/todolist',
      `GET /api/todolist/${id}`,
      `PUT /api/todolist/${id}`,
      `PATCH /api/todolist/${id}`,
      `DELETE /api/todolist/${id}`,
    ]);
    for (const request of seen) {
      const claims = claimsOf(request);
      expect(claims.aud).toBe(DEV_IDENTITIES.apiClientId);
      expect(claims.oid).toBe(tess.oid);
      expect(String(claims.scp).split(' ')).toContain(
        request.method === 'GET' ? 'ToDoList.Read' : 'ToDoList.ReadWrite',
      );
      if (request.method === 'GET') expect(claims.scp).not.toContain('ToDoList.ReadWrite');
      expect(Object.keys(request.headers).filter((name) => !FORWARDED_HEADERS.has(name))).toEqual(
        [],
      );
      expect(request.headers.connection).toBe('keep-alive');
      expect(request.headers.accept).toBe('application/json');
    }
  });

  it('answers 405 with Allow for a method a route does not take', async () => {
    const collection = await writer.call('PUT', '/api/todos', { description: 'x' });
    expectProblem(collection, 405);
    expect(collection.headers.allow).toBe('GET, POST');
    const item = await writer.call('POST', '/api/todos/abc', { description: 'x' });
    expectProblem(item, 405);
    expect(item.headers.allow).toBe('GET, PUT, PATCH, DELETE');
    expect((await writer.call('OPTIONS', '/api/todos')).status).toBe(405);
  });

  describe('refuses before any session, token or API work', () => {
    const refusals: [string, Record<string, string>][] = [
      ['no X-CSRF header', { 'x-csrf': '' }],
      ['X-CSRF other than 1', { 'x-csrf': 'true' }],
      ['a cross-site Sec-Fetch-Site', { 'sec-fetch-site': 'cross-site' }],
      ['a same-site (sibling subdomain) Sec-Fetch-Site', { 'sec-fetch-site': 'same-site' }],
      ['a foreign Origin', { origin: 'http://evil.example' }],
      ['an opaque Origin', { origin: 'null' }],
    ];
    it.each(refusals)('%s: 403', async (_case, headers) => {
      const apiBefore = api.counters().requests;
      const tokensBefore = tokenRequests();
      for (const [method, path] of [
        ['GET', '/api/todos'],
        ['POST', '/api/todos'],
        ['DELETE', '/api/todos/abc'],
      ] as const) {
        const sent = Object.fromEntries(Object.entries(headers).filter(([, value]) => value));
        const omitted = Object.keys(headers).filter((name) => headers[name] === '');
        const answer = await send(path, {
          method,
          headers: Object.fromEntries(
            Object.entries({
              cookie: writer.cookie,
              'x-csrf': '1',
              origin,
              'content-type': 'application/json',
              ...sent,
            }).filter(([name]) => !omitted.includes(name)),
          ),
          body: method === 'POST' ? '{"description":"csrf"}' : '',
        });
        expectProblem(answer, 403);
      }
      expect(api.counters().requests).toBe(apiBefore);
      expect(tokenRequests()).toBe(tokensBefore);
    });

    it('403 even while the session store is down: the check comes before the session is read', async () => {
      const tablePort = azurite.tablePort;
      await azurite.stop();
      try {
        const refused = await send('/api/todos', { headers: { cookie: writer.cookie } });
        expectProblem(refused, 403);
        // The same request with the header does read the session, and finds the store down.
        const allowed = await writer.call('GET', '/api/todos');
        expectProblem(allowed, 503);
        expect(allowed.headers['retry-after']).toBeDefined();
      } finally {
        azurite = await startAzurite({ tablePort });
      }
      // In-memory Azurite came back empty: every session of this file is gone.
      writer = await signIn(tess);
    });
  });

  describe('without a session', () => {
    it('answers 401 problem JSON with a loginUrl, never a redirect', async () => {
      for (const cookie of [
        undefined,
        `${SESSION_COOKIE}=forged-${randomBytes(8).toString('hex')}`,
      ]) {
        const answer = await send('/api/todos', {
          headers: { 'x-csrf': '1', ...(cookie === undefined ? {} : { cookie }) },
        });
        expectProblem(answer, 401);
        expect(answer.headers.location).toBeUndefined();
        expect(answer.json.loginUrl).toBe('/auth/signin?returnTo=%2F');
        // A cookie that names no session is cleared.
        const cleared = (answer.headers['set-cookie'] ?? []).some((line) =>
          line.startsWith(`${SESSION_COOKIE}=;`),
        );
        expect(cleared).toBe(cookie !== undefined);
      }
    });
  });

  describe('refuses bad input with 4xx before the API', () => {
    let apiBefore: number;
    beforeEach(() => {
      apiBefore = api.counters().requests;
    });

    const badIds = [
      '..%2F..',
      '..%2f..%2Fadmin',
      '%2e%2e%2Fx',
      'a%2Fb',
      'a/b',
      'a%20b',
      'a.b',
      'a%00b',
      '%C3%A9t%C3%A9',
      'http:%2F%2Fevil.example%2Fx',
      'https%3A%2F%2Fevil.example',
      '%2F%2Fevil.example',
      '%5C%5Cevil.example',
      'a'.repeat(129),
    ];
    it.each(badIds)('id %s: 400', async (id) => {
      const answer = await writer.call('GET', `/api/todos/${id}`);
      expectProblem(answer, 400);
      expect((await writer.call('DELETE', `/api/todos/${id}`)).status).toBe(400);
      expect(api.counters().requests).toBe(apiBefore);
    });

    // The host (as Kestrel does) resolves dot segments, decoded ones too, before routing: these
    // never reach the function, whose route then does not match.
    it.each(['..', '%2e%2e', '%2E%2E', 'x/../..'])(
      'dot segments %s: never reach the API',
      async (id) => {
        const answer = await writer.call('GET', `/api/todos/${id}`);
        expect([400, 404]).toContain(answer.status);
        expect(api.counters().requests).toBe(apiBefore);
      },
    );

    it('accepts the longest id (128) and the whole id alphabet', async () => {
      const id = `Az09_-${'x'.repeat(122)}`;
      expect((await writer.call('GET', `/api/todos/${id}`)).status).toBe(404);
      expect(api.requests().at(-1)?.path).toBe(`/api/todolist/${id}`);
    });

    it.each([
      ['no Content-Type', undefined],
      ['text/plain', 'text/plain'],
      ['a form', 'application/x-www-form-urlencoded'],
      ['multipart', 'multipart/form-data; boundary=x'],
      ['JSON in Latin-1', 'application/json; charset=iso-8859-1'],
    ])('%s: 415', async (_case, contentType) => {
      for (const [method, path] of [
        ['POST', '/api/todos'],
        ['PUT', '/api/todos/abc'],
        ['PATCH', '/api/todos/abc'],
      ]) {
        const answer = await send(path ?? '', {
          method,
          headers: {
            cookie: writer.cookie,
            'x-csrf': '1',
            ...(contentType === undefined ? {} : { 'content-type': contentType }),
          },
          body: '{"description":"x"}',
        });
        expectProblem(answer, 415);
      }
      expect(api.counters().requests).toBe(apiBefore);
    });

    it('a body over 16 KiB: 413', async () => {
      const body = JSON.stringify({ description: 'x'.repeat(16 * 1024) });
      const declared = await send('/api/todos', {
        method: 'POST',
        headers: { cookie: writer.cookie, 'x-csrf': '1', 'content-type': 'application/json' },
        body,
      });
      expectProblem(declared, 413);
      expect(api.counters().requests).toBe(apiBefore);
    });

    // The host passes a body only when Content-Length > 0 (GrpcMessageConversionExtensions.ToRpcHttp
    // in azure-functions-host): a chunked one reaches the app empty, which must not pass for "{}".
    it.each([
      ['POST', '/api/todos'],
      ['PUT', '/api/todos/item-1'],
      ['PATCH', '/api/todos/item-1'],
    ])('%s %s with a chunked body: 411, nothing sent upstream', async (method, path) => {
      for (const body of [JSON.stringify({ description: 'streamed' }), '']) {
        const chunked = await send(path, {
          method,
          headers: {
            cookie: writer.cookie,
            'x-csrf': '1',
            'content-type': 'application/json',
            'transfer-encoding': 'chunked',
          },
          body,
        });
        expectProblem(chunked, 411);
      }
      expect(api.counters().requests).toBe(apiBefore);
    });

    it.each([
      ['malformed JSON', '{"description": '],
      ['an empty body', ''],
      ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])],
    ])('%s: 400', async (_case, body) => {
      const answer = await send('/api/todos', {
        method: 'POST',
        headers: { cookie: writer.cookie, 'x-csrf': '1', 'content-type': 'application/json' },
        body,
      });
      expectProblem(answer, 400);
      expect(api.counters().requests).toBe(apiBefore);
    });
  });

  describe('tokens', () => {
    it('the first write after a fresh sign-in succeeds: consent is tenant-wide, the refresh token redeems for the write scope', async () => {
      const reader = await signIn(uma);
      const refreshes = emulator.counters().token.refresh_token ?? 0;
      const answer = await reader.call('POST', '/api/todos', { description: 'no consent asked' });
      expect(answer.status, answer.text).toBe(201);
      expect(emulator.counters().token.refresh_token).toBe(refreshes + 1);
      expect((await reader.call('GET', '/api/todos')).json).toMatchObject([
        { description: 'no consent asked' },
      ]);
    });

    it("the API's 401 gets one retry with a freshly refreshed token", async () => {
      const caller = await signIn(vic);
      api.reset();
      const refreshes = emulator.counters().token.refresh_token ?? 0;
      api.setFault({ mode: 'reject_token', count: 1 });
      const answer = await caller.call('GET', '/api/todos');
      expect(answer.status, answer.text).toBe(200);
      expect(api.requests()).toHaveLength(2);
      expect(emulator.counters().token.refresh_token).toBe(refreshes + 1);
      const [first, second] = api.requests().map((request) => request.headers.authorization);
      expect(second).not.toBe(first);
    });

    it("the API's 401 twice: 401 with a loginUrl, session kept", async () => {
      const caller = await signIn(vic);
      api.reset();
      api.setFault({ mode: 'reject_token', count: 5 });
      const answer = await caller.call('GET', '/api/todos');
      expectProblem(answer, 401);
      expect(answer.json.loginUrl).toBe('/auth/signin?returnTo=%2F');
      expect(api.requests()).toHaveLength(2);
      api.clearFaults();
      expect((await caller.call('GET', '/api/todos')).status).toBe(200);
    });

    it('a refresh the IdP rejects ends the session: 401, cookie cleared, the old cookie refused', async () => {
      const caller = await signIn(wes);
      const cookie = caller.cookie;
      api.setFault({ mode: 'reject_token', count: 1 });
      emulator.setFault({ kind: 'refresh_invalid_grant', oid: wes.oid });
      const answer = await caller.call('GET', '/api/todos');
      expectProblem(answer, 401);
      expect(answer.json.loginUrl).toBe('/auth/signin?returnTo=%2F');
      expect(answer.headers['set-cookie']?.[0]).toMatch(new RegExp(`^${SESSION_COOKIE}=;`));
      emulator.clearFaults();
      const again = await send('/api/todos', { headers: { cookie, 'x-csrf': '1' } });
      expectProblem(again, 401);
    });

    it('the IdP unavailable: 503 with Retry-After, session kept', async () => {
      const caller = await signIn(xia);
      api.setFault({ mode: 'reject_token', count: 1 });
      emulator.setFault({ kind: 'token_5xx', status: 503, oid: xia.oid });
      const answer = await caller.call('GET', '/api/todos');
      expectProblem(answer, 503);
      expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
      emulator.clearFaults();
      api.clearFaults();
      expect((await caller.call('GET', '/api/todos')).status).toBe(200);
    });
  });

  describe("the API's failures", () => {
    it('relays 5xx and 4xx with their problem body', async () => {
      for (const status of [500, 502, 404, 409]) {
        api.setFault({ mode: 'status', status, retryAfter: 9, count: 1 });
        const answer = await writer.call('GET', '/api/todos');
        expectProblem(answer, status);
        expect(answer.json.detail).toBe('The API failed (injected fault).');
        // Retry-After only with 429 and 503.
        expect(answer.headers['retry-after']).toBeUndefined();
      }
    });

    it.each([429, 503])('relays %i with its Retry-After', async (status) => {
      api.setFault({ mode: 'status', status, retryAfter: 7, count: 1 });
      const answer = await writer.call('POST', '/api/todos', { description: 'later' });
      expectProblem(answer, status);
      expect(answer.headers['retry-after']).toBe('7');
    });

    it('the API dropping connections: 502', async () => {
      api.setFault({ mode: 'down' });
      expectProblem(await writer.call('GET', '/api/todos'), 502);
      expectProblem(await writer.call('POST', '/api/todos', { description: 'x' }), 502);
    });

    it('the API slower than TODOLIST_TIMEOUT_MS: 504 at the deadline', async () => {
      api.setFault({ mode: 'slow', delayMs: TIMEOUT_MS * 3, count: 1 });
      const started = performance.now();
      const answer = await writer.call('GET', '/api/todos');
      const elapsed = performance.now() - started;
      expectProblem(answer, 504);
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(elapsed).toBeLessThan(TIMEOUT_MS * 3);
    });

    it('the API not listening: 502, and back to normal once it is', async () => {
      await api.close();
      try {
        const answer = await writer.call('GET', '/api/todos');
        expectProblem(answer, 502);
        expect(answer.json.detail).toBe('The to-do list API could not be reached.');
      } finally {
        api = await restartApi();
      }
      expect((await writer.call('GET', '/api/todos')).status).toBe(200);
    });
  });

  it("one user never sees or touches another's items", async () => {
    const owner = await signIn(yan);
    const other = await signIn(zed);
    const created = await owner.call('POST', '/api/todos', { description: "yan's secret" });
    const id = String(created.json.id);
    await other.call('POST', '/api/todos', { description: "zed's own" });

    const othersList = await other.call('GET', '/api/todos');
    expect(othersList.json).toEqual([expect.objectContaining({ description: "zed's own" })]);
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { description: 'hijacked' }],
      ['PATCH', { description: 'hijacked' }],
      ['DELETE', undefined],
    ] as const) {
      expectProblem(await other.call(method, `/api/todos/${id}`, body), 404);
    }
    expect((await owner.call('GET', `/api/todos/${id}`)).json).toMatchObject({
      description: "yan's secret",
    });
  });
});

describe('the shared app', () => {
  const shared = stack.appOrigin;

  it('serves the page and its files with a strict CSP and revalidation', async () => {
    const page = await fetch(`${shared}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp.split('; ')).toEqual([
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "connect-src 'self'",
      "img-src 'self'",
      `form-action 'self' ${stack.emulator.origin}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ]);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('same-origin');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    // No inline script or style for the CSP to allow.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=/i);

    for (const [name, type] of [
      ['app.js', 'text/javascript; charset=utf-8'],
      ['app.css', 'text/css; charset=utf-8'],
      ['favicon.svg', 'image/svg+xml'],
    ]) {
      const file = await fetch(`${shared}/static/${name}`);
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe(type);
      expect(file.headers.get('content-security-policy')).toBe(csp);
      const etag = file.headers.get('etag') ?? '';
      const revalidated = await fetch(`${shared}/static/${name}`, {
        headers: { 'if-none-match': etag },
      });
      expect(revalidated.status).toBe(304);
    }
    expect((await fetch(`${shared}/static/index.html`)).status).toBe(404);
    expect((await fetch(`${shared}/static/..%2Fapp.js`)).status).toBe(404);
  });

  it('serves the API with the same rules: 403 without X-CSRF, 401 JSON without a session', async () => {
    const refused = await fetch(`${shared}/api/todos`);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-security-policy')).toBe(
      "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    );
    const anonymous = await fetch(`${shared}/api/todos`, {
      headers: { 'x-csrf': '1' },
      redirect: 'manual',
    });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ loginUrl: '/auth/signin?returnTo=%2F' });
  });
});
