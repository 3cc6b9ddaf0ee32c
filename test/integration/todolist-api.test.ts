import { randomUUID } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWTPayload } from 'jose';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startTodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import type { TodoListApi, TodoListApiOptions } from '../../dev/todolist-api/todolist-api.mts';

const TENANT = randomUUID();
const AUDIENCE = randomUUID();
const KID = 'test-key';
const ALICE = randomUUID();
const BOB = randomUUID();
const READ = 'ToDoList.Read';
const WRITE = 'ToDoList.ReadWrite';

let jwksServer: Server;
let caCertPem: string;
let issuer: string;
let jwksUri: string;
let privateKey: CryptoKey;
let api: TodoListApi;
const started: TodoListApi[] = [];

async function startApi(overrides: Partial<TodoListApiOptions> = {}): Promise<TodoListApi> {
  const instance = await startTodoListApi({
    issuer,
    jwksUri,
    audience: AUDIENCE,
    caCertPem,
    ...overrides,
  });
  started.push(instance);
  return instance;
}

beforeAll(async () => {
  const keys = await generateKeyPair('RS256');
  privateKey = keys.privateKey;
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
  // A certificate made now, trusted only through the API's caCertPem option.
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  caCertPem = pems.cert;
  jwksServer = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
    if (req.url !== `/${TENANT}/discovery/v2.0/keys`) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const origin = `https://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
  issuer = `${origin}/${TENANT}/v2.0`;
  jwksUri = `${origin}/${TENANT}/discovery/v2.0/keys`;
  api = await startApi({ maxBodyBytes: 4096 });
});

afterAll(async () => {
  await Promise.all(started.map((instance) => instance.close()));
  jwksServer.closeAllConnections();
  await new Promise((resolve) => jwksServer.close(resolve));
});

beforeEach(() => api.reset());

const now = () => Math.floor(Date.now() / 1000);

function claims(overrides: JWTPayload = {}): JWTPayload {
  return {
    iss: issuer,
    aud: AUDIENCE,
    sub: randomUUID(),
    oid: ALICE,
    tid: TENANT,
    azp: randomUUID(),
    ver: '2.0',
    scp: `${READ} ${WRITE}`,
    iat: now(),
    exp: now() + 600,
    ...overrides,
  };
}

function sign(payload: JWTPayload = claims(), key: CryptoKey | Uint8Array = privateKey) {
  const alg = key instanceof Uint8Array ? 'HS256' : 'RS256';
  return new SignJWT(payload).setProtectedHeader({ alg, kid: KID, typ: 'JWT' }).sign(key);
}

const tokenFor = (oid: string, scp = `${READ} ${WRITE}`) => sign(claims({ oid, scp }));

interface CallOptions {
  token?: string;
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

function call(method: string, path = '', options: CallOptions = {}, target = api) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers['content-type'] ??= 'application/json';
  return fetch(`${target.endpoint}${path}`, {
    method,
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : options.body,
    signal: options.signal,
  });
}

function admin(method: string, path: string, json?: unknown) {
  return fetch(`${api.origin}/_api/${path}`, {
    method,
    headers: json === undefined ? {} : { 'content-type': 'application/json' },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
}

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const problem = (await response.json()) as Record<string, unknown>;
  expect(problem).toMatchObject({ type: 'about:blank', status });
  expect(problem.detail).toEqual(expect.any(String));
  return problem;
}

async function create(token: string, description = 'buy milk') {
  const response = await call('POST', '', { token, json: { description } });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; owner: string; description: string };
}

describe('to-do contract', () => {
  it('lists, creates, reads, replaces, patches and deletes with a good token', async () => {
    const token = await tokenFor(ALICE);
    const list = await call('GET', '', { token });
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toBe('application/json');
    expect(await list.json()).toEqual([]);

    const created = await call('POST', '', { token, json: { description: 'buy milk' } });
    expect(created.status).toBe(201);
    const item = (await created.json()) as { id: string };
    expect(item).toEqual({ id: item.id, owner: ALICE, description: 'buy milk' });
    expect(item.id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(created.headers.get('location')).toBe(`/api/todolist/${item.id}`);

    expect(await (await call('GET', '', { token })).json()).toEqual([item]);
    expect(await (await call('GET', `/${item.id}`, { token })).json()).toEqual(item);

    const put = await call('PUT', `/${item.id}`, { token, json: { description: 'buy oat milk' } });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ ...item, description: 'buy oat milk' });

    const noop = await call('PATCH', `/${item.id}`, { token, json: {} });
    expect(await noop.json()).toEqual({ ...item, description: 'buy oat milk' });
    const patched = await call('PATCH', `/${item.id}`, {
      token,
      json: { description: 'buy bread' },
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toEqual({ ...item, description: 'buy bread' });

    const deleted = await call('DELETE', `/${item.id}`, { token });
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe('');
    await expectProblem(await call('GET', `/${item.id}`, { token }), 404);
    expect(await (await call('GET', '', { token })).json()).toEqual([]);
  });

  it('ignores an id or owner sent by the client', async () => {
    const token = await tokenFor(ALICE);
    const response = await call('POST', '', {
      token,
      json: { id: 'mine', owner: BOB, description: 'x' },
    });
    const item = (await response.json()) as { id: string };
    expect(item).toMatchObject({ owner: ALICE, description: 'x' });
    expect(item.id).not.toBe('mine');
  });

  it('reads with either scope', async () => {
    for (const scp of [READ, WRITE]) {
      expect((await call('GET', '', { token: await tokenFor(ALICE, scp) })).status).toBe(200);
    }
  });

  it('answers 404 for unknown routes and ids, 405 with Allow for wrong methods', async () => {
    const token = await tokenFor(ALICE);
    await expectProblem(await call('GET', `/${randomUUID()}`, { token }), 404);
    await expectProblem(await call('GET', '/a/b', { token }), 404);
    await expectProblem(await fetch(`${api.origin}/api/other`), 404);

    const onCollection = await call('DELETE', '', { token });
    await expectProblem(onCollection, 405);
    expect(onCollection.headers.get('allow')).toBe('GET, POST');
    const onItem = await call('POST', `/${randomUUID()}`, { token, json: { description: 'x' } });
    await expectProblem(onItem, 405);
    expect(onItem.headers.get('allow')).toBe('GET, PUT, PATCH, DELETE');
  });
});

describe('authentication', () => {
  it('answers 401 with a bare Bearer challenge when no token is sent', async () => {
    for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }] as Record<
      string,
      string
    >[]) {
      const response = await call('GET', '', { headers });
      await expectProblem(response, 401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
  });

  const invalid: [string, () => Promise<string>][] = [
    ['a wrong audience', () => sign(claims({ aud: randomUUID() }))],
    ['a wrong issuer', () => sign(claims({ iss: `https://login.example/${TENANT}/v2.0` }))],
    ['an expired token', () => sign(claims({ iat: now() - 7200, exp: now() - 3600 }))],
    ['a token not valid yet', () => sign(claims({ nbf: now() + 3600 }))],
    ['no exp claim', () => sign(claims({ exp: undefined }))],
    ['no oid claim', () => sign(claims({ oid: undefined }))],
    [
      'a token signed by another key',
      async () => sign(claims(), (await generateKeyPair('RS256')).privateKey),
    ],
    [
      'an HS256 token',
      () => sign(claims(), new TextEncoder().encode('a shared secret, 32 bytes or more')),
    ],
    [
      'an alg none token',
      () => {
        const part = (value: object) => base64url.encode(JSON.stringify(value));
        return Promise.resolve(`${part({ alg: 'none', typ: 'JWT' })}.${part(claims())}.`);
      },
    ],
    ['a malformed token', () => Promise.resolve('not-a-jwt')],
  ];

  it.each(invalid)('answers 401 invalid_token for %s', async (_name, makeToken) => {
    const token = await makeToken();
    const response = await call('GET', '', { token });
    expect(response.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    const problem = await expectProblem(response, 401);
    expect(JSON.stringify(problem)).not.toContain(token);
  });

  it('answers 401 for a malformed Authorization header', async () => {
    const response = await call('GET', '', { headers: { authorization: 'Bearer a b' } });
    expect(response.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    await expectProblem(response, 401);
  });

  it('answers 403 insufficient_scope for a read-only token on writes', async () => {
    const item = await create(await tokenFor(ALICE));
    const token = await tokenFor(ALICE, READ);
    const writes: [string, string, unknown][] = [
      ['POST', '', { description: 'x' }],
      ['PUT', `/${item.id}`, { description: 'x' }],
      ['PATCH', `/${item.id}`, { description: 'x' }],
      ['DELETE', `/${item.id}`, undefined],
    ];
    for (const [method, path, json] of writes) {
      const response = await call(method, path, { token, json });
      await expectProblem(response, 403);
      expect(response.headers.get('www-authenticate')).toBe(
        `Bearer error="insufficient_scope", scope="${WRITE}"`,
      );
    }
    expect(await (await call('GET', `/${item.id}`, { token })).json()).toEqual(item);
  });

  it('answers 403 on reads for a token without a to-do scope', async () => {
    const response = await call('GET', '', { token: await tokenFor(ALICE, 'User.Read') });
    await expectProblem(response, 403);
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer error="insufficient_scope", scope="${READ}"`,
    );
  });

  it('trusts the JWKS certificate only through caCertPem', async () => {
    const untrusting = await startApi({ caCertPem: undefined });
    const response = await call('GET', '', { token: await tokenFor(ALICE) }, untrusting);
    await expectProblem(response, 503);
    expect(response.headers.get('www-authenticate')).toBeNull();
  });
});

describe('per-user data', () => {
  it('never shows or changes another user’s items', async () => {
    const alice = await tokenFor(ALICE);
    const bob = await tokenFor(BOB);
    const item = await create(alice);

    expect(await (await call('GET', '', { token: bob })).json()).toEqual([]);
    await expectProblem(await call('GET', `/${item.id}`, { token: bob }), 404);
    const change = { description: 'hacked' };
    await expectProblem(await call('PUT', `/${item.id}`, { token: bob, json: change }), 404);
    await expectProblem(await call('PATCH', `/${item.id}`, { token: bob, json: change }), 404);
    await expectProblem(await call('DELETE', `/${item.id}`, { token: bob }), 404);

    const own = await create(bob, 'bob’s');
    expect(await (await call('GET', '', { token: bob })).json()).toEqual([own]);
    expect(await (await call('GET', '', { token: alice })).json()).toEqual([item]);
  });
});

describe('request validation', () => {
  it('answers 400 for bad JSON', async () => {
    const response = await call('POST', '', {
      token: await tokenFor(ALICE),
      body: '{"description":',
      headers: { 'content-type': 'application/json' },
    });
    expect((await expectProblem(response, 400)).detail).toMatch(/JSON/);
  });

  it.each([
    ['missing', {}, /required/],
    ['not a string', { description: 42 }, /string/],
    ['empty', { description: '   ' }, /empty/],
    ['too long', { description: 'x'.repeat(1001) }, /at most/],
  ])('answers 400 with errors when the description is %s', async (_name, json, message) => {
    const token = await tokenFor(ALICE);
    const item = await create(token);
    for (const [method, path] of [
      ['POST', ''],
      ['PUT', `/${item.id}`],
    ]) {
      const problem = await expectProblem(await call(method!, path, { token, json }), 400);
      expect(problem.errors).toEqual({ description: [expect.stringMatching(message)] });
    }
  });

  it('answers 400 when the body is not an object', async () => {
    const token = await tokenFor(ALICE);
    const item = await create(token);
    await expectProblem(await call('POST', '', { token, json: ['x'] }), 400);
    await expectProblem(await call('PATCH', `/${item.id}`, { token, json: 'x' }), 400);
  });

  it('answers 413 for a body over maxBodyBytes', async () => {
    const response = await call('POST', '', {
      token: await tokenFor(ALICE),
      json: { description: 'x'.repeat(5000) },
    });
    await expectProblem(response, 413);
  });

  it('answers 415 for a body that is not JSON', async () => {
    const token = await tokenFor(ALICE);
    const plain = await call('POST', '', { token, body: '{"description":"x"}' });
    expect((await expectProblem(plain, 415)).detail).toMatch(/application\/json/);
    const form = await call('POST', '', {
      token,
      body: 'description=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await expectProblem(form, 415);
  });
});

describe('faults', () => {
  it('down: drops the connection without a response, count times', async () => {
    const token = await tokenFor(ALICE);
    api.setFault({ mode: 'down', count: 1 });
    await expect(call('GET', '', { token })).rejects.toThrow(TypeError);
    expect((await call('GET', '', { token })).status).toBe(200);
    expect(api.counters()).toMatchObject({
      requests: 2,
      byStatus: { 200: 1 },
      faults: { down: 1 },
    });
  });

  it('slow: holds the answer back for delayMs', async () => {
    const token = await tokenFor(ALICE);
    api.setFault({ mode: 'slow', delayMs: 60_000, count: 1 });
    await expect(call('GET', '', { token, signal: AbortSignal.timeout(100) })).rejects.toThrow(
      expect.objectContaining({ name: 'TimeoutError' }),
    );
    api.setFault({ mode: 'slow', delayMs: 50, count: 1 });
    const started = performance.now();
    expect((await call('GET', '', { token })).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(api.counters().faults.slow).toBe(2);
  });

  it('status: answers the given status and Retry-After until the count runs out', async () => {
    const token = await tokenFor(ALICE);
    api.setFault({ mode: 'status', status: 503, retryAfter: 7, count: 2 });
    for (let i = 0; i < 2; i++) {
      const response = await call('GET', '', { token });
      await expectProblem(response, 503);
      expect(response.headers.get('retry-after')).toBe('7');
    }
    expect((await call('GET', '', { token })).status).toBe(200);

    api.setFault({ mode: 'status', status: 500 });
    for (let i = 0; i < 3; i++) await expectProblem(await call('GET', '', { token }), 500);
    api.clearFaults();
    expect((await call('GET', '', { token })).status).toBe(200);
    expect(api.counters().byStatus).toEqual({ 200: 2, 500: 3, 503: 2 });
  });

  it('reject_token: answers 401 invalid_token to a good token', async () => {
    const token = await tokenFor(ALICE);
    api.setFault({ mode: 'reject_token', count: 1 });
    const rejected = await call('GET', '', { token });
    await expectProblem(rejected, 401);
    expect(rejected.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect((await call('GET', '', { token })).status).toBe(200);
  });

  it('oid: a fault hits only that user, and clearing it leaves the others', async () => {
    const [alice, bob] = [await tokenFor(ALICE), await tokenFor(BOB)];
    api.setFault({ mode: 'status', status: 504, oid: ALICE });
    api.setFault({ mode: 'status', status: 503, oid: BOB, count: 1 });
    await expectProblem(await call('GET', '', { token: alice }), 504);
    await expectProblem(await call('GET', '', { token: bob }), 503);
    expect((await call('GET', '', { token: bob })).status).toBe(200);
    await expectProblem(await call('GET', '', { token: alice }), 504);

    // A fault for everyone stays when one user's faults are cleared.
    api.setFault({ mode: 'status', status: 500 });
    expect((await admin('DELETE', `faults?oid=${ALICE}`)).status).toBe(204);
    await expectProblem(await call('GET', '', { token: alice }), 500);
    api.clearFaults(BOB);
    await expectProblem(await call('GET', '', { token: bob }), 500);
    api.clearFaults();
    expect((await call('GET', '', { token: alice })).status).toBe(200);
  });

  it('refuses a malformed fault', () => {
    expect(() => api.setFault({ mode: 'status', status: 200 })).toThrow(/400 to 599/);
    expect(() => api.setFault({ mode: 'down', count: 0 })).toThrow(/positive integer/);
    expect(() => api.setFault({ mode: 'down', oid: '' })).toThrow(/oid/);
  });
});

describe('admin surface', () => {
  it('sets and clears faults, reports counters and requests, resets', async () => {
    const token = await tokenFor(ALICE);
    await create(token);
    expect(
      (
        await admin('POST', 'faults', {
          mode: 'status',
          status: 429,
          retryAfter: 'Wed, 21 Oct 2099 07:28:00 GMT',
        })
      ).status,
    ).toBe(204);
    const limited = await call('GET', '', { token });
    await expectProblem(limited, 429);
    expect(limited.headers.get('retry-after')).toBe('Wed, 21 Oct 2099 07:28:00 GMT');
    expect((await admin('DELETE', 'faults')).status).toBe(204);
    expect((await call('GET', '', { token })).status).toBe(200);

    const counters: unknown = await (await admin('GET', 'counters')).json();
    expect(counters).toEqual({
      requests: 3,
      byStatus: { 200: 1, 201: 1, 429: 1 },
      faults: { down: 0, slow: 0, status: 1, reject_token: 0 },
    });
    const logged = (await (await admin('GET', 'requests')).json()) as { method: string }[];
    expect(logged.map((entry) => entry.method)).toEqual(['POST', 'GET', 'GET']);

    expect((await admin('POST', 'reset')).status).toBe(204);
    expect(await (await admin('GET', 'requests')).json()).toEqual([]);
    expect(await (await call('GET', '', { token })).json()).toEqual([]);
  });

  it('answers 400 for a bad fault, 404 and 405 for wrong routes', async () => {
    await expectProblem(await admin('POST', 'faults', { mode: 'melt' }), 400);
    await expectProblem(await admin('POST', 'faults', { mode: 'slow' }), 400);
    await expectProblem(await admin('GET', 'nothing'), 404);
    const wrong = await admin('GET', 'faults');
    await expectProblem(wrong, 405);
    expect(wrong.headers.get('allow')).toBe('POST, DELETE');
    expect(api.counters().requests).toBe(0);
  });
});

describe('request log', () => {
  it('records method, path and headers of each call', async () => {
    const token = await tokenFor(ALICE);
    await call('GET', '?top=5', { token, headers: { cookie: 'session=abc', 'x-trace': '1' } });
    expect(api.requests()).toEqual([
      {
        method: 'GET',
        path: '/api/todolist?top=5',
        headers: expect.objectContaining({
          authorization: `Bearer ${token}`,
          cookie: 'session=abc',
          'x-trace': '1',
        }) as unknown,
      },
    ]);
  });
});

describe('close', () => {
  it('ends requests still in flight', { timeout: 2000 }, async () => {
    const instance = await startApi();
    instance.setFault({ mode: 'slow', delayMs: 60_000 });
    const pending = call('GET', '', {}, instance);
    await vi.waitFor(() => expect(instance.counters().requests).toBe(1));
    await instance.close();
    await expect(pending).rejects.toThrow(TypeError);
  });

  it('closes idle keep-alive connections at once', { timeout: 2000 }, async () => {
    const instance = await startApi();
    const agent = new Agent({ keepAlive: true });
    // The response ends with the socket kept alive and idle in the agent's pool.
    const socket = await new Promise<Socket>((resolve, reject) => {
      const req = httpRequest(instance.endpoint, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(req.socket as Socket));
      });
      req.on('error', reject);
      req.end();
    });
    const socketClosed = new Promise((resolve) => socket.once('close', resolve));
    await instance.close();
    await socketClosed;
    agent.destroy();
  });
});
