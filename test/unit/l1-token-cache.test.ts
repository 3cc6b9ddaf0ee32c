import { describe, expect, it } from 'vitest';
import { L1TokenCache, type L1Token } from '../../src/lib/tokens/l1-token-cache.ts';

const MINUTE = 60_000;
const READ = 'api://todo/ToDoList.Read';
const WRITE = 'api://todo/ToDoList.ReadWrite';

/** A cache whose clock the test moves. */
function cacheAt(start: number, maxBytes?: number) {
  let now = start;
  const cache = new L1TokenCache({
    now: () => now,
    ...(maxBytes === undefined ? {} : { maxBytes }),
  });
  return { cache, advance: (ms: number) => (now += ms) };
}

function token(name: string, expiresInMs: number, refreshInMs?: number, length = 1200): L1Token {
  const start = Date.UTC(2026, 10, 24);
  return {
    accessToken: `${name}.`.padEnd(length, 'x'),
    expiresOn: new Date(start + expiresInMs),
    ...(refreshInMs === undefined ? {} : { refreshOn: new Date(start + refreshInMs) }),
  };
}

const T0 = Date.UTC(2026, 10, 24);

describe('L1TokenCache', () => {
  it('serves a token only for the ETag of the row it came from', () => {
    const { cache } = cacheAt(T0);
    const kept = token('a', 60 * MINUTE);
    cache.set('user-1', READ, 'etag-1', kept);
    expect(cache.get('user-1', READ, 'etag-1')).toEqual(kept);
    expect(cache.get('user-1', WRITE, 'etag-1')).toBeUndefined();
    expect(cache.get('user-2', READ, 'etag-1')).toBeUndefined();
    // The row changed (another instance refreshed): everything kept for the user goes.
    expect(cache.get('user-1', READ, 'etag-2')).toBeUndefined();
    expect(cache.get('user-1', READ, 'etag-1')).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it('keeps one row version per user: a token for a newer row replaces the older ones', () => {
    const { cache } = cacheAt(T0);
    cache.set('user-1', READ, 'etag-1', token('read', 60 * MINUTE));
    cache.set('user-1', WRITE, 'etag-1', token('write', 60 * MINUTE));
    const newer = token('read-2', 60 * MINUTE);
    cache.set('user-1', READ, 'etag-2', newer);
    expect(cache.get('user-1', READ, 'etag-2')).toEqual(newer);
    expect(cache.get('user-1', WRITE, 'etag-2')).toBeUndefined();
  });

  it('stops serving a token when MSAL would renew it: 5 minutes before expiry, or at refresh_in', () => {
    const { cache, advance } = cacheAt(T0);
    cache.set('user-1', READ, 'e', token('a', 60 * MINUTE));
    advance(55 * MINUTE - 1);
    expect(cache.get('user-1', READ, 'e')).toBeDefined();
    advance(1);
    expect(cache.get('user-1', READ, 'e')).toBeUndefined();

    const early = cacheAt(T0);
    early.cache.set('user-1', READ, 'e', token('b', 60 * MINUTE, 30 * MINUTE));
    early.advance(30 * MINUTE);
    expect(early.cache.get('user-1', READ, 'e')).toBeUndefined();
  });

  it('does not keep a token without an expiry, one already due for renewal, or an oversized one', () => {
    const { cache } = cacheAt(T0);
    cache.set('user-1', READ, 'e', { accessToken: 'a.b.c', expiresOn: null });
    cache.set('user-2', READ, 'e', token('due', 4 * MINUTE));
    cache.set('user-3', READ, 'e', token('huge', 60 * MINUTE, undefined, 64 * 1024));
    for (const user of ['user-1', 'user-2', 'user-3']) {
      expect(cache.get(user, READ, 'e')).toBeUndefined();
    }
    expect(cache.bytes).toBe(0);
  });

  it('stays within its byte bound, dropping the least recently used user first', () => {
    const perToken = 1200 + 512;
    const { cache } = cacheAt(T0, 3 * perToken);
    cache.set('user-1', READ, 'e', token('1', 60 * MINUTE));
    cache.set('user-2', READ, 'e', token('2', 60 * MINUTE));
    cache.set('user-3', READ, 'e', token('3', 60 * MINUTE));
    expect(cache.get('user-1', READ, 'e')).toBeDefined(); // user-2 is now the least recent
    cache.set('user-4', READ, 'e', token('4', 60 * MINUTE));
    expect(cache.bytes).toBe(3 * perToken);
    expect(cache.get('user-2', READ, 'e')).toBeUndefined();
    for (const user of ['user-1', 'user-3', 'user-4']) {
      expect(cache.get(user, READ, 'e')).toBeDefined();
    }
  });

  it('counts a replaced token once, and forgets a user entirely', () => {
    const { cache } = cacheAt(T0);
    cache.set('user-1', READ, 'e', token('a', 60 * MINUTE));
    cache.set('user-1', READ, 'e', token('b', 60 * MINUTE));
    cache.set('user-1', WRITE, 'e', token('c', 60 * MINUTE));
    expect(cache.bytes).toBe(2 * (1200 + 512));
    cache.forget('user-1');
    expect(cache.get('user-1', READ, 'e')).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  describe('sessions', () => {
    const session = { id: 'ann' };
    const entry = (servableUntil: number, withTokenRow = true) => ({
      session,
      servableUntil,
      withTokenRow,
      bytes: 1000,
    });

    it("serves a session until its servable time, by the caller's clock", () => {
      const cache = new L1TokenCache<typeof session>();
      cache.setSession('user-1', 'row-1', entry(T0 + 5000), cache.epoch);
      expect(cache.getSession('user-1', 'row-1', true, T0 + 4999)).toBe(session);
      expect(cache.getSession('user-1', 'row-2', true, T0)).toBeUndefined();
      expect(cache.getSession('user-1', 'row-1', true, T0 + 5000)).toBeUndefined();
      expect(cache.bytes).toBe(0);
    });

    it('serves a session read without the token row only to requests that need no token', () => {
      const cache = new L1TokenCache<typeof session>();
      cache.setSession('user-1', 'row-1', entry(T0 + 5000, false), cache.epoch);
      expect(cache.getSession('user-1', 'row-1', true, T0)).toBeUndefined();
      expect(cache.getSession('user-1', 'row-1', false, T0)).toBe(session);
    });

    it('does not keep what was read before an invalidation (a sign-out while the read was out)', () => {
      const cache = new L1TokenCache<typeof session>();
      const readAt = cache.epoch;
      cache.forgetSession('user-1', 'row-1');
      cache.setSession('user-1', 'row-1', entry(T0 + 5000), readAt);
      expect(cache.getSession('user-1', 'row-1', true, T0)).toBeUndefined();
      const tokenReadAt = cache.epoch;
      cache.forget('user-2');
      cache.set('user-1', READ, 'e', token('a', 60 * MINUTE), tokenReadAt);
      expect(cache.get('user-1', READ)).toBeUndefined();
      expect(cache.bytes).toBe(0);
    });

    it("forgets one session, all of a user's, or the user with their tokens", () => {
      const { cache } = cacheAt(T0);
      const sessions = cache as unknown as L1TokenCache<typeof session>;
      sessions.setSession('user-1', 'row-1', entry(T0 + 5000), sessions.epoch);
      sessions.setSession('user-1', 'row-2', entry(T0 + 5000), sessions.epoch);
      cache.set('user-1', READ, 'e', token('a', 60 * MINUTE));
      sessions.forgetSession('user-1', 'row-1');
      expect(sessions.getSession('user-1', 'row-1', true, T0)).toBeUndefined();
      expect(sessions.getSession('user-1', 'row-2', true, T0)).toBe(session);
      sessions.forgetSessions('user-1');
      expect(sessions.getSession('user-1', 'row-2', true, T0)).toBeUndefined();
      // Sessions go, tokens stay: they follow the token-cache row.
      expect(cache.get('user-1', READ)).toBeDefined();
      sessions.setSession('user-1', 'row-3', entry(T0 + 5000), sessions.epoch);
      cache.forget('user-1');
      expect(sessions.getSession('user-1', 'row-3', true, T0)).toBeUndefined();
      expect(cache.get('user-1', READ)).toBeUndefined();
      expect(cache.bytes).toBe(0);
    });

    it('serves tokens without an ETag while a remembered session vouches for the row, and drops them when a read shows another row', () => {
      const { cache } = cacheAt(T0);
      cache.set('user-1', READ, 'etag-1', token('a', 60 * MINUTE));
      expect(cache.get('user-1', READ)).toBeDefined();
      cache.observeRow('user-1', 'etag-1');
      expect(cache.get('user-1', READ)).toBeDefined();
      cache.observeRow('user-1', 'etag-2');
      expect(cache.get('user-1', READ)).toBeUndefined();
      cache.set('user-1', READ, 'etag-2', token('b', 60 * MINUTE));
      cache.observeRow('user-1', undefined); // the row is gone
      expect(cache.get('user-1', READ)).toBeUndefined();
    });

    it('counts sessions and tokens against one bound, dropping the least recently used user', () => {
      const perToken = 1200 + 512;
      const { cache } = cacheAt(T0, 2 * perToken + 1000);
      const sessions = cache as unknown as L1TokenCache<typeof session>;
      cache.set('user-1', READ, 'e', token('1', 60 * MINUTE));
      cache.set('user-2', READ, 'e', token('2', 60 * MINUTE));
      sessions.setSession('user-2', 'row', entry(T0 + 5000), sessions.epoch);
      expect(cache.bytes).toBe(2 * perToken + 1000);
      sessions.setSession('user-3', 'row', entry(T0 + 5000), sessions.epoch);
      expect(cache.get('user-1', READ)).toBeUndefined();
      expect(cache.bytes).toBe(perToken + 2000);
    });
  });
});
