import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestUser } from '../../dev/entra-emulator/emulator.mts';
import { rawRequest } from '../security/support/http.ts';
import {
  Cluster,
  crashLines,
  expectProcessAlive,
  privateUsers,
  SESSION_COOKIE,
  TOKEN_CACHE_ROW_KEY,
  type Caller,
} from './support/cluster.ts';
import { report } from './support/report.ts';

// The IdP failing during a refresh, with two app processes: a transient failure (5xx, or the IdP
// not listening) is a 503 that keeps the session and the tokens, and MSAL's throttling of the
// failed client object reaches no other user and no later request; a rejected refresh token ends
// the user's tokens and session (401 with a login URL).

const users = privateUsers('idp', ['eve', 'fay', 'gus', 'hal', 'ivy']);
const [eve, fay, gus, hal, ivy] = users as [TestUser, TestUser, TestUser, TestUser, TestUser];
let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start({ users, apps: 2 });
});

afterAll(async () => {
  await cluster?.stop();
});

beforeEach(() => {
  cluster.api.clearFaults();
  cluster.emulator.clearFaults();
});

const refreshes = () => cluster.emulator.counters().token.refresh_token ?? 0;

async function tokenRowEtag(caller: Caller): Promise<string | undefined> {
  try {
    return (
      await cluster.table().getEntity(cluster.homeAccountId(caller.user), TOKEN_CACHE_ROW_KEY)
    ).etag;
  } catch {
    return undefined;
  }
}

function me(caller: Caller, cookie = caller.cookieValue, app = 0) {
  return rawRequest(cluster.apps[app]?.origin ?? '', {
    path: '/auth/me',
    headers: { cookie: `${SESSION_COOKIE}=${cookie}` },
  });
}

describe('the IdP answering 5xx during a refresh', () => {
  it('503 with Retry-After; session and row kept; no throttling leaks to another user or a later request', async () => {
    const [eveCaller, fayCaller] = [await cluster.signIn(eve), await cluster.signIn(fay)];
    const rowsBefore = await cluster.rowKeysOf(eve);
    const etagBefore = await tokenRowEtag(eveCaller);

    // MSAL throttles a client object for Retry-After (here 60 s) after a 5xx carrying it.
    cluster.emulator.setFault({
      kind: 'token_5xx',
      status: 503,
      retryAfterSeconds: 60,
      oid: eve.oid,
    });
    cluster.api.setFault({ mode: 'reject_token', count: 1 });
    const failedAt = performance.now();
    const failed = await eveCaller.call('GET', '/api/todos', { app: 0 });
    expect(failed.status, failed.text).toBe(503);
    expect(Number(failed.headers['retry-after'])).toBeGreaterThan(0);
    expect(failed.json).toMatchObject({ status: 503, title: 'Service unavailable' });
    expect(failed.headers['set-cookie']).toBeUndefined();
    expect(await cluster.rowKeysOf(eve)).toEqual(rowsBefore);
    expect(await tokenRowEtag(eveCaller)).toBe(etagBefore);
    expect((await me(eveCaller)).status).toBe(200);
    // The access token still in the cache keeps serving while the IdP is down.
    expect((await eveCaller.call('GET', '/api/todos', { app: 0 })).status).toBe(200);

    // Another user on the same process, right away: a refresh of their own, not throttled.
    const before = refreshes();
    cluster.api.setFault({ mode: 'reject_token', count: 1 });
    const other = await fayCaller.call('GET', '/api/todos', { app: 0 });
    expect(other.status, other.text).toBe(200);
    expect(refreshes()).toBe(before + 1);

    // The same user again while the IdP still fails: the request reaches the IdP (a throttled
    // client would replay the error without asking), and fails the same transient way.
    const asked = refreshes();
    cluster.api.setFault({ mode: 'reject_token', count: 1 });
    expect((await eveCaller.call('GET', '/api/todos', { app: 1 })).status).toBe(503);
    expect(refreshes()).toBe(asked + 1);

    // Once the IdP recovers, the very next request of that user refreshes, on either process,
    // well inside the 60 s MSAL would have throttled a shared client object for.
    cluster.emulator.clearFaults();
    for (const app of [0, 1]) {
      const again = refreshes();
      cluster.api.setFault({ mode: 'reject_token', count: 1 });
      const recovered = await eveCaller.call('GET', '/api/todos', { app });
      expect(recovered.status, recovered.text).toBe(200);
      expect(refreshes()).toBe(again + 1);
    }
    const recoveredAfterMs = performance.now() - failedAt;
    expect(recoveredAfterMs).toBeLessThan(60_000);
    report('IdP 5xx during a refresh', {
      firstFailure: failed.status,
      recoveredRefreshAfterFirstFailureMs: Math.round(recoveredAfterMs),
      msalThrottleWindowMs: 60_000,
    });
  });
});

describe('the IdP rejecting a refresh', () => {
  it.each([
    ['invalid_grant with suberror bad_token', 'refresh_invalid_grant', hal],
    ['plain invalid_grant', 'refresh_invalid_grant_plain', ivy],
  ] as const)(
    '%s: 401 with loginUrl; the row and the session are deleted',
    async (_case, kind, user) => {
      const deviceA = await cluster.signIn(user);
      const deviceB = await cluster.signIn(user);
      const rows = await cluster.rowKeysOf(user);
      expect(rows.filter((key) => key.startsWith('session.'))).toHaveLength(2);
      expect(rows).toContain(TOKEN_CACHE_ROW_KEY);
      const cookieA = deviceA.cookieValue;

      cluster.emulator.setFault({ kind, oid: user.oid });
      cluster.api.setFault({ mode: 'reject_token', count: 1 });
      const answer = await deviceA.call('GET', '/api/todos', { app: 1 });
      expect(answer.status, answer.text).toBe(401);
      expect(answer.headers['content-type']).toBe('application/problem+json');
      expect(answer.json?.loginUrl).toBe('/auth/signin?returnTo=%2F');
      expect(answer.headers.location).toBeUndefined();
      expect(
        answer.headers['set-cookie']?.some((line) => line.startsWith(`${SESSION_COOKIE}=;`)),
      ).toBe(true);

      // The tokens and this session are gone; the old cookie opens nothing on any process.
      const after = await cluster.rowKeysOf(user);
      expect(after).not.toContain(TOKEN_CACHE_ROW_KEY);
      expect(after.filter((key) => key.startsWith('session.'))).toHaveLength(1);
      for (const app of [0, 1]) expect((await me(deviceA, cookieA, app)).status).toBe(401);

      // The user's other device has no tokens left: its next API call ends its session too.
      cluster.emulator.clearFaults();
      const other = await deviceB.call('GET', '/api/todos', { app: 0 });
      expect(other.status).toBe(401);
      expect(other.json?.loginUrl).toBe('/auth/signin?returnTo=%2F');
      expect(await cluster.rowKeysOf(user)).toEqual([]);

      // Signing in again works at once.
      const back = await cluster.signIn(user);
      expect((await back.call('GET', '/api/todos', { app: 1 })).status).toBe(200);
    },
  );
});

// Last: the emulator is stopped for good (a new one would have new keys and forget every grant).
describe('the IdP not listening', () => {
  it('serves valid access tokens; a refresh is a 503 that keeps session, row and refresh token', async () => {
    const caller = await cluster.signIn(gus);
    const store = cluster.tokenStore();
    const before = await store.read(cluster.homeAccountId(gus));
    const rowsBefore = await cluster.rowKeysOf(gus);
    await cluster.emulator.close();

    expect((await caller.call('GET', '/api/todos', { app: 0 })).status).toBe(200);
    for (const app of [0, 1]) {
      cluster.api.setFault({ mode: 'reject_token', count: 1 });
      const started = performance.now();
      const answer = await caller.call('GET', '/api/todos', { app });
      expect(answer.status, answer.text).toBe(503);
      expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
      expect(answer.text).not.toMatch(/ECONNREFUSED|\bat .*\.js:\d+/);
      report(`IdP not listening (app ${app})`, {
        status: answer.status,
        answeredInMs: Math.round(performance.now() - started),
      });
    }
    const after = await store.read(cluster.homeAccountId(gus));
    expect(after?.etag).toBe(before?.etag);
    expect(after?.serialized).toBe(before?.serialized);
    expect(await cluster.rowKeysOf(gus)).toEqual(rowsBefore);
    expect((await me(caller)).status).toBe(200);

    for (const app of cluster.apps) await expectProcessAlive(app);
    expect(crashLines(cluster.output())).toEqual([]);
  });
});
