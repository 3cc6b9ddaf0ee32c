import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { TestUser } from '../../dev/entra-emulator/emulator.mts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  Cluster,
  crashLines,
  privateUsers,
  SESSION_COOKIE,
  type Caller,
} from '../resilience/support/cluster.ts';
import {
  CONTENT_TYPES,
  hostileText,
  METHODS,
  percentEncode,
  propertyParameters,
  queryString,
  requestBody,
  targetPiece,
  todoId,
} from './support/arbitraries.ts';
import { UserAgent } from '../support/user-agent.ts';
import { JWT, leaksIn, rawRequest, settingSecrets, STACK_FRAME } from './support/http.ts';

// An app process of this file's own, so that its log can be read and the API it proxies to can
// be watched: the proxy cannot be steered anywhere but TODOLIST_ENDPOINT, and nothing secret is
// ever written to the log, whether the flow goes well, a dependency fails or the input is hostile.

const [lia, moe] = privateUsers('private', ['lia', 'moe']) as [TestUser, TestUser];
const TIMEOUT_MS = 800;
/** The only paths the API may ever see from the proxy. */
const API_PATH = /^\/api\/todolist(?:\/[A-Za-z0-9_-]{1,128})?$/;

let cluster: Cluster;
/** A server standing in for any host the proxy must never reach; it counts what it gets. */
let canary: http.Server;
let canaryHits = 0;
let canaryHost: string;
/** Every secret that flowed through the app, and what it is. */
const secrets = new Map<string, string>();

beforeAll(async () => {
  canary = http.createServer((_request, response) => {
    canaryHits += 1;
    response.end('[]');
  });
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
  canaryHost = `127.0.0.1:${(canary.address() as AddressInfo).port}`;
  cluster = await Cluster.start({
    users: [lia, moe],
    storage: { kind: 'shared', connectionString: inject('azuriteConnectionString') },
    appEnv: { TODOLIST_TIMEOUT_MS: String(TIMEOUT_MS) },
  });
  for (const [secret, kind] of settingSecrets(cluster.settings)) secrets.set(secret, kind);
});

afterAll(async () => {
  await cluster?.stop();
  await new Promise((resolve) => canary?.close(resolve));
});

/** Notes each token in the user's row (whole, and a JWT's signature) as a secret. */
async function collectTokens(caller: Caller, when: string): Promise<void> {
  const row = await cluster.tokenStore().read(cluster.homeAccountId(caller.user));
  const cache = JSON.parse(row?.serialized ?? '{}') as Record<
    string,
    Record<string, { secret?: string }> | undefined
  >;
  for (const kind of ['AccessToken', 'RefreshToken', 'IdToken']) {
    for (const { secret } of Object.values(cache[kind] ?? {})) {
      if (secret === undefined) continue;
      secrets.set(secret, `${kind} (${when})`);
      const signature = secret.split('.')[2];
      if (signature !== undefined && signature.length >= 20) {
        secrets.set(signature, `${kind} signature (${when})`);
      }
    }
  }
}

/** A user agent that also notes every authorization code and cookie value it is handed. */
class RecordingAgent extends UserAgent {
  override async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const response = await super.fetch(url, init);
    const location = response.headers.get('location');
    const code = location === null ? null : new URL(location, url).searchParams.get('code');
    if (code !== null) secrets.set(code, 'an authorization code');
    for (const line of response.headers.getSetCookie()) {
      const value = line.split(';')[0]?.split('=').slice(1).join('=') ?? '';
      if (value.length >= 16) secrets.set(value, 'a cookie value');
    }
    return response;
  }
}

function signIn(user: TestUser): Promise<Caller> {
  return cluster.signIn(user, new RecordingAgent());
}

describe('the proxy reaches TODOLIST_ENDPOINT and nothing else', () => {
  let caller: Caller;
  beforeAll(async () => {
    caller = await signIn(lia);
  });

  const steering = () => [
    '..%2F..%2F_api%2Freset',
    '..%2f..',
    '%2e%2e',
    '%2e%2e%2f%2e%2e%2fadmin',
    '%252e%252e%252f',
    '..%5C..%5C',
    '..\\..\\x',
    '%5C%5Cevil.example',
    'a%2Fb',
    '%2F%2Fevil.example',
    `%2F%2F${canaryHost}`,
    `http:%2F%2F${canaryHost}%2Fx`,
    `https%3A%2F%2F${canaryHost}`,
    '@evil.example',
    `@${canaryHost}`,
    `x@${canaryHost}`,
    '%40evil.example',
    `user:pass%40${canaryHost}`,
    '%E3%80%82%E3%80%82',
    '%EF%BC%8E%EF%BC%8E%EF%BC%8F',
    '%EF%BD%A1',
    '%E2%80%A4%E2%80%A4',
    '%C0%AE%C0%AE%C0%AF',
    '%u002e%u002e',
    'x%3Fy%3Dz',
    'x%23frag',
    'x;y',
    'x%0D%0AHost:%20evil.example',
    'x%00',
    '%20',
    'caf%C3%A9',
  ];

  it('refuses every steering id before the API: 400 (or the host 404), the API and the canary see nothing', async () => {
    const apiBefore = cluster.api.counters().requests;
    for (const id of steering()) {
      for (const method of ['GET', 'PUT', 'PATCH', 'DELETE']) {
        const answer = await caller.call(method, `/api/todos/${id}`, {
          ...(method === 'PUT' || method === 'PATCH' ? { body: { description: 'x' } } : {}),
        });
        expect([400, 404], `${method} ${id}: ${answer.status} ${answer.text}`).toContain(
          answer.status,
        );
      }
    }
    expect(cluster.api.counters().requests).toBe(apiBefore);
    expect(canaryHits).toBe(0);
  });

  it('random ids, methods and bodies: the API only ever sees its own collection and item paths', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          id: fc.oneof(todoId, targetPiece, hostileText.map(percentEncode)),
          method: fc.constantFrom(...METHODS),
          body: requestBody,
          contentType: fc.constantFrom(...CONTENT_TYPES),
          query: queryString,
        }),
        async ({ id, method, body, contentType, query }) => {
          const before = cluster.api.counters().requests;
          const answer = await rawRequest(cluster.origin, {
            method,
            path: `/api/todos/${id}${query}`,
            headers: {
              cookie: `${SESSION_COOKIE}=${caller.cookieValue}`,
              'x-csrf': '1',
              'content-type': contentType,
            },
            ...(body === undefined ? {} : { body }),
          });
          expect(answer.status).not.toBe(500);
          const reached = cluster.api.counters().requests - before;
          const seen = reached > 0 ? cluster.api.requests().slice(-reached) : [];
          for (const request of seen) {
            expect(request.path, `${method} /api/todos/${id}`).toMatch(API_PATH);
          }
          expect(canaryHits).toBe(0);
        },
      ),
      propertyParameters(300),
    );
    // The proxy still works.
    expect((await caller.call('GET', '/api/todos')).status).toBe(200);
  });
});

describe('the app log', () => {
  it('holds no token, code, cookie, key or stack through faults and hostile input', async () => {
    // Read scope only: the emulator's refresh token carries the scopes of its own sign-in.
    const caller = await signIn(lia);
    await collectTokens(caller, 'sign-in');
    const other = await signIn(moe);

    // A forced refresh (the API refuses the cached token once).
    cluster.api.setFault({ mode: 'reject_token', count: 1 });
    expect((await caller.call('GET', '/api/todos')).status).toBe(200);
    await collectTokens(caller, 'forced refresh');
    // The API refusing even a fresh token.
    cluster.api.setFault({ mode: 'reject_token', count: 2 });
    expect((await caller.call('GET', '/api/todos')).status).toBe(401);
    // The IdP failing during a refresh.
    cluster.api.setFault({ mode: 'reject_token', count: 1 });
    cluster.emulator.setFault({ kind: 'token_5xx', status: 503, oid: lia.oid, count: 1 });
    expect((await caller.call('GET', '/api/todos')).status).toBe(503);
    // The API down, slow, failing and throttling.
    cluster.api.setFault({ mode: 'down' });
    expect((await caller.call('GET', '/api/todos')).status).toBe(502);
    cluster.api.clearFaults();
    cluster.api.setFault({ mode: 'slow', delayMs: TIMEOUT_MS * 3, count: 1 });
    expect((await caller.call('GET', '/api/todos')).status).toBe(504);
    cluster.api.setFault({ mode: 'status', status: 500, count: 1 });
    expect((await caller.call('GET', '/api/todos')).status).toBe(500);
    cluster.api.setFault({ mode: 'status', status: 429, retryAfter: 3, count: 1 });
    expect(
      (await caller.call('POST', '/api/todos', { body: { description: 'later' } })).status,
    ).toBe(429);
    cluster.api.clearFaults();
    cluster.emulator.clearFaults();

    // Hostile input with a live session.
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          method: fc.constantFrom(...METHODS),
          path: fc.tuple(
            fc.constantFrom(
              '/api/todos',
              '/api/todos/x',
              '/auth/me',
              '/auth/redirect',
              '/auth/signin',
              '/',
            ),
            queryString,
          ),
          body: requestBody,
          contentType: fc.constantFrom(...CONTENT_TYPES),
        }),
        async ({ method, path: [path, query], body, contentType }) => {
          const answer = await rawRequest(cluster.origin, {
            method,
            path: `${path}${query}`,
            headers: {
              cookie: `${SESSION_COOKIE}=${caller.cookieValue}`,
              'x-csrf': '1',
              'content-type': contentType,
            },
            ...(body === undefined ? {} : { body }),
          });
          expect(answer.status).not.toBe(500);
        },
      ),
      propertyParameters(150),
    );

    // A refresh the IdP rejects: moe is signed out.
    cluster.api.setFault({ mode: 'reject_token', count: 1 });
    cluster.emulator.setFault({ kind: 'refresh_invalid_grant', oid: moe.oid });
    expect((await other.call('GET', '/api/todos')).status).toBe(401);
    cluster.api.clearFaults();
    cluster.emulator.clearFaults();

    await collectTokens(caller, 'end');
    // Sign-out answers with a redirect; the agent notes what it clears.
    const out = await caller.call('POST', '/auth/signout');
    expect(out.status).toBe(303);

    const output = cluster.output();
    // The log did record the flow and its failures (so there was something to search).
    expect(/DependencyFailed/.test(output), 'dependency failures in the log').toBe(true);
    expect(/SignInRequired/.test(output), 'the rejected refresh in the log').toBe(true);
    expect([...secrets.values()]).toEqual(
      expect.arrayContaining([
        'RefreshToken (sign-in)',
        'AccessToken (forced refresh)',
        'an authorization code',
        'a cookie value',
        'CLIENT_SECRET',
        'TOKEN_CACHE_KEYS',
      ]),
    );
    expect(leaksIn(output, secrets)).toEqual([]);
    expect(JWT.exec(output)?.[0], 'a JWT in the log').toBeUndefined();
    expect(STACK_FRAME.exec(output)?.[0], 'a stack frame in the log').toBeUndefined();
    expect(crashLines(output)).toEqual([]);
  });
});
