import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestUser } from '../../dev/entra-emulator/emulator.mts';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import {
  Cluster,
  privateUsers,
  SESSION_COOKIE,
  TOKEN_CACHE_ROW_KEY,
  type Caller,
} from '../resilience/support/cluster.ts';
import { TableProxy } from '../resilience/support/table-proxy.ts';
import { rawRequest, type RawAnswer } from '../security/support/http.ts';

// A stack of this file's own whose app reaches Table Storage only through a counting proxy, so
// that the writes unauthenticated traffic causes can be counted, and whose users no other file
// signs in or out.
const [ann, bo, cid, dot, eve, fay] = privateUsers('sessions', [
  'ann',
  'bo',
  'cid',
  'dot',
  'eve',
  'fay',
]) as [TestUser, TestUser, TestUser, TestUser, TestUser, TestUser];

let cluster: Cluster;
let proxy: TableProxy;
let origin: string;

interface SessionEntry {
  id: string;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  current: boolean;
}

beforeAll(async () => {
  const shared = inject('azuriteConnectionString');
  const tablePort = Number(/TableEndpoint=http:\/\/127\.0\.0\.1:(\d+)\//.exec(shared)?.[1]);
  expect(tablePort).toBeGreaterThan(0);
  proxy = await new TableProxy(() => ({ host: '127.0.0.1', port: tablePort })).listen();
  cluster = await Cluster.start({
    users: [ann, bo, cid, dot, eve, fay],
    storage: { kind: 'shared', connectionString: shared },
    connectionStringFor: () => proxy.connectionString,
  });
  origin = cluster.origin;
});

afterAll(async () => {
  await cluster?.stop();
  await proxy?.close();
});

/** A call as the page makes it: the session cookie (when given), X-CSRF and this origin. */
function call(
  method: string,
  path: string,
  cookie: string | undefined,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  return rawRequest(origin, {
    method,
    path,
    headers: {
      ...(cookie === undefined ? {} : { cookie: `${SESSION_COOKIE}=${cookie}` }),
      'x-csrf': '1',
      origin,
      'sec-fetch-site': 'same-origin',
      ...headers,
    },
  });
}

async function listOf(caller: Caller): Promise<SessionEntry[]> {
  const answer = await caller.call('GET', '/auth/sessions');
  expect(answer.status, answer.text).toBe(200);
  return (answer.json as { sessions: SessionEntry[] }).sessions;
}

async function rowsOf(user: TestUser) {
  const keys = await cluster.rowKeysOf(user);
  return {
    tokens: keys.includes(TOKEN_CACHE_ROW_KEY),
    sessions: keys.filter((key) => key.startsWith('session.')).length,
  };
}

describe('unauthenticated traffic', () => {
  it('writes nothing to Table Storage on any route, whatever cookie it brings', async () => {
    // A cookie sealed by another deployment, one of this deployment naming no session, and (below)
    // the cookie of a session that was signed out: none is a live session.
    const otherKeys = new KeyRing([randomBytes(32)]);
    const sessionKeys = new KeyRing(
      (cluster.settings.SESSION_KEYS ?? '').split(',').map((key) => Buffer.from(key, 'base64')),
    );
    const reference = JSON.stringify({
      p: cluster.homeAccountId(eve),
      s: randomBytes(32).toString('base64url'),
    });
    const seal = (ring: KeyRing) =>
      ring.seal(Buffer.from(reference), 'session-cookie/v1').toString('base64url');
    const signedOut = await cluster.signIn(eve);
    const signedOutCookie = signedOut.cookieValue;
    expect((await signedOut.call('POST', '/auth/signout')).status).toBe(303);

    const cookies = [
      undefined,
      'garbage',
      seal(otherKeys),
      seal(sessionKeys),
      signedOutCookie,
    ] as const;
    const requests: [string, string][] = [
      ['GET', '/'],
      ['GET', '/static/app.js'],
      ['GET', '/auth/signin?returnTo=/'],
      ['GET', '/auth/redirect?code=abc&state=def'],
      ['GET', '/auth/me'],
      ['POST', '/auth/signout'],
      ['POST', '/auth/signout?everywhere=1'],
      ['GET', '/auth/sessions'],
      ['DELETE', `/auth/sessions/${'A'.repeat(22)}`],
      ['GET', '/api/todos'],
      ['POST', '/api/todos'],
      ['GET', '/api/todos/abc'],
      ['DELETE', '/api/todos/abc'],
      ['GET', '/health'],
    ];
    const writesBefore = proxy.counts.writes;
    const requestsBefore = proxy.counts.requests;
    const statuses = new Set<number>();
    for (const cookie of cookies) {
      for (const [method, path] of requests) {
        const answer = await call(method, path, cookie, {
          ...(method === 'POST' && path.startsWith('/api/')
            ? { 'content-type': 'application/json' }
            : {}),
        });
        statuses.add(answer.status);
        expect(answer.status, `${method} ${path}`).toBeLessThan(500);
      }
    }
    // The traffic reached storage (reads of the sessions the cookies name) and wrote nothing.
    expect(proxy.counts.requests).toBeGreaterThan(requestsBefore);
    expect(proxy.counts.writes - writesBefore).toBe(0);
    expect(statuses).toContain(401);
  });
});

describe('sign-out', () => {
  it('on one device leaves the other working; the last one removes the tokens', async () => {
    const laptop = await cluster.signIn(ann);
    const phone = await cluster.signIn(ann);
    expect(await rowsOf(ann)).toEqual({ tokens: true, sessions: 2 });

    const out = await phone.call('POST', '/auth/signout');
    expect(out.status).toBe(303);
    const endSession = new URL(String(out.headers.location));
    expect(endSession.pathname).toMatch(/\/oauth2\/v2\.0\/logout$/);
    expect(endSession.searchParams.get('logout_hint')).toBeTruthy();
    expect((await phone.call('GET', '/auth/me')).status).toBe(401);
    expect((await laptop.call('GET', '/auth/me')).status).toBe(200);
    // The laptop still gets a token for the API.
    expect((await laptop.call('GET', '/api/todos')).status).toBe(200);
    expect(await rowsOf(ann)).toEqual({ tokens: true, sessions: 1 });

    expect((await laptop.call('POST', '/auth/signout')).status).toBe(303);
    expect((await laptop.call('GET', '/auth/me')).status).toBe(401);
    expect(await rowsOf(ann)).toEqual({ tokens: false, sessions: 0 });
  });

  it('everywhere=1 ends every session of the user and the tokens', async () => {
    const laptop = await cluster.signIn(bo);
    const phone = await cluster.signIn(bo);
    const out = await laptop.call('POST', '/auth/signout?everywhere=1');
    expect(out.status).toBe(303);
    expect(new URL(String(out.headers.location)).searchParams.get('logout_hint')).toBeTruthy();
    expect((await laptop.call('GET', '/auth/me')).status).toBe(401);
    expect((await phone.call('GET', '/auth/me')).status).toBe(401);
    expect((await phone.call('GET', '/api/todos')).status).toBe(401);
    expect(await rowsOf(bo)).toEqual({ tokens: false, sessions: 0 });
  });
});

describe('/auth/sessions', () => {
  it("lists the user's own live sessions with opaque ids, this one marked current", async () => {
    const laptop = await cluster.signIn(cid);
    const phone = await cluster.signIn(cid);
    const other = await cluster.signIn(fay);
    const sessions = await listOf(laptop);
    expect(sessions).toHaveLength(2);
    expect(sessions.filter((session) => session.current)).toHaveLength(1);
    for (const session of sessions) {
      expect(Object.keys(session).sort()).toEqual(
        ['createdAt', 'current', 'expiresAt', 'id', 'idleExpiresAt', 'lastUsedAt'].sort(),
      );
      expect(session.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.parse(session.createdAt));
      expect(Date.parse(session.lastUsedAt)).toBeGreaterThanOrEqual(Date.parse(session.createdAt));
    }
    const phoneList = await listOf(phone);
    expect(phoneList.map((session) => session.id).sort()).toEqual(
      sessions.map((session) => session.id).sort(),
    );
    expect(phoneList.find((session) => session.current)?.id).not.toBe(
      sessions.find((session) => session.current)?.id,
    );
    // Another user sees only their own.
    const othersList = await listOf(other);
    expect(othersList).toHaveLength(1);
    expect(sessions.map((session) => session.id)).not.toContain(othersList[0]?.id);

    // An id is no cookie, and no cookie's secret is in the list.
    for (const session of sessions) {
      expect((await call('GET', '/auth/me', session.id)).status).toBe(401);
      expect(laptop.cookieValue).not.toContain(session.id);
    }
    const listed = JSON.stringify(sessions);
    expect(listed).not.toContain(laptop.cookieValue);
    expect(listed).not.toContain(phone.cookieValue);
  });

  it("ends another device's session, never another user's, and the tokens with the last one", async () => {
    const laptop = await cluster.signIn(dot);
    const phone = await cluster.signIn(dot);
    const stranger = await cluster.signIn(eve);
    const phoneId = (await listOf(phone)).find((session) => session.current)?.id ?? '';
    const strangerId = (await listOf(stranger))[0]?.id ?? '';

    // Not one of theirs: 404, and nothing ends.
    expect((await stranger.call('DELETE', `/auth/sessions/${phoneId}`)).status).toBe(404);
    expect((await laptop.call('DELETE', `/auth/sessions/${strangerId}`)).status).toBe(404);
    expect((await laptop.call('DELETE', `/auth/sessions/${'A'.repeat(22)}`)).status).toBe(404);
    expect((await laptop.call('DELETE', '/auth/sessions/not-an-id')).status).toBe(404);
    expect((await phone.call('GET', '/auth/me')).status).toBe(200);
    expect((await stranger.call('GET', '/auth/me')).status).toBe(200);

    // Without the app's header, or from another site: 403, and nothing ends.
    const noHeader = await laptop.call('DELETE', `/auth/sessions/${phoneId}`, {
      headers: { 'x-csrf': '' },
    });
    expect(noHeader.status).toBe(403);
    const crossSite = await laptop.call('DELETE', `/auth/sessions/${phoneId}`, {
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);
    expect((await call('DELETE', `/auth/sessions/${phoneId}`, undefined)).status).toBe(401);
    expect((await phone.call('GET', '/auth/me')).status).toBe(200);

    const ended = await laptop.call('DELETE', `/auth/sessions/${phoneId}`);
    expect(ended.status).toBe(204);
    expect(ended.headers['set-cookie']).toBeUndefined();
    expect((await phone.call('GET', '/auth/me')).status).toBe(401);
    expect((await laptop.call('GET', '/api/todos')).status).toBe(200);
    expect(await rowsOf(dot)).toEqual({ tokens: true, sessions: 1 });
    // Ended already: 404 the second time.
    expect((await laptop.call('DELETE', `/auth/sessions/${phoneId}`)).status).toBe(404);

    // Its own, last session: the cookie is cleared and the tokens go, without an IdP redirect.
    const ownId = (await listOf(laptop))[0]?.id ?? '';
    const own = await laptop.call('DELETE', `/auth/sessions/${ownId}`);
    expect(own.status).toBe(204);
    expect(own.headers.location).toBeUndefined();
    expect(own.headers['set-cookie']?.[0]).toMatch(/^__Host-bff-session=;.*Max-Age=0/i);
    expect((await laptop.call('GET', '/auth/me')).status).toBe(401);
    expect(await rowsOf(dot)).toEqual({ tokens: false, sessions: 0 });
    // The other user was untouched.
    expect((await stranger.call('GET', '/auth/me')).status).toBe(200);
    expect(await rowsOf(eve)).toMatchObject({ tokens: true });
  });

  it('ending its own session while another is live keeps the tokens for that one', async () => {
    const laptop = await cluster.signIn(ann);
    const phone = await cluster.signIn(ann);
    const ownId = (await listOf(phone)).find((session) => session.current)?.id ?? '';
    expect((await phone.call('DELETE', `/auth/sessions/${ownId}`)).status).toBe(204);
    expect((await phone.call('GET', '/auth/me')).status).toBe(401);
    expect((await laptop.call('GET', '/api/todos')).status).toBe(200);
    expect(await rowsOf(ann)).toEqual({ tokens: true, sessions: 1 });
  });
});
