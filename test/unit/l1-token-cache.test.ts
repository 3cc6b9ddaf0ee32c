import { describe, expect, it } from 'vitest';
import { L1TokenCache, type L1Token } from '../../src/lib/l1-token-cache.ts';

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
});
