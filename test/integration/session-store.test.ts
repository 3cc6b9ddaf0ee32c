import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import { SessionStore, type SessionLifetimes } from '../../src/lib/auth/session-store.ts';
import { tokenTableOn } from '../support/table-storage.ts';

// The session store's reads and writes on Azurite, counted in the table client's pipeline, with a
// clock the test moves: what SESSION_RECHECK_SECONDS saves, and what it must not postpone.

const SECOND = 1000;

function storeWith(lifetimes: SessionLifetimes) {
  const { table, counter } = tokenTableOn(inject('azuriteConnectionString'));
  let now = Date.UTC(2026, 10, 30, 6);
  const store = new SessionStore(table, new KeyRing([randomBytes(32)]), lifetimes, {
    now: () => now,
  });
  return {
    store,
    counter,
    advance: (ms: number) => (now += ms),
    signIn: async (name: string) => {
      const created = await store.create({
        homeAccountId: `${name}-oid.tenant`,
        name,
        username: `${name}@example.com`,
        loginHint: undefined,
      });
      counter.reset();
      return created.cookieValue;
    },
  };
}

describe('SessionStore with SESSION_RECHECK_SECONDS', () => {
  it('reads the row once per window, not per request', async () => {
    const { store, counter, advance, signIn } = storeWith({
      idleMinutes: 120,
      absoluteHours: 24,
      recheckSeconds: 5,
    });
    const cookie = await signIn('ann');
    expect(await store.resolve(cookie, { withTokenCache: true })).toMatchObject({
      username: 'ann@example.com',
      tokenCacheRow: null,
    });
    expect(counter.reads).toBe(1);
    advance(5 * SECOND - 1);
    expect(await store.resolve(cookie, { withTokenCache: true })).toMatchObject({
      username: 'ann@example.com',
      tokenCacheRow: 'remembered',
    });
    expect(await store.resolve(cookie)).toMatchObject({ username: 'ann@example.com' });
    expect(counter.reads).toBe(1);
    advance(1);
    await store.resolve(cookie, { withTokenCache: true });
    expect(counter.reads).toBe(2);
    expect(counter.writes).toBe(0);
  });

  it('reads on every request with 0', async () => {
    const { store, counter, signIn } = storeWith({
      idleMinutes: 120,
      absoluteHours: 24,
      recheckSeconds: 0,
    });
    const cookie = await signIn('ben');
    for (let index = 0; index < 3; index += 1) {
      expect(await store.resolve(cookie, { withTokenCache: true })).toBeDefined();
    }
    expect(counter.reads).toBe(3);
  });

  it('serves a session read without the token row only to requests that need no token', async () => {
    const { store, counter, signIn } = storeWith({
      idleMinutes: 120,
      absoluteHours: 24,
      recheckSeconds: 60,
    });
    const cookie = await signIn('cat');
    await store.resolve(cookie);
    await store.resolve(cookie);
    expect(counter.reads).toBe(1);
    expect(await store.resolve(cookie, { withTokenCache: true })).toMatchObject({
      tokenCacheRow: null,
    });
    expect(counter.reads).toBe(2);
  });

  it('renews the idle deadline as often as without memory: once per tenth of the idle lifetime', async () => {
    const { store, counter, advance, signIn } = storeWith({
      idleMinutes: 1,
      absoluteHours: 1,
      recheckSeconds: 300,
    });
    const cookie = await signIn('dee');
    await store.resolve(cookie);
    advance(6 * SECOND);
    expect((await store.resolve(cookie))?.idleExpiresAt.getTime()).toBeLessThan(
      Date.UTC(2026, 10, 30, 6) + 61 * SECOND,
    );
    expect(counter.writes).toBe(0);
    advance(1);
    const renewed = await store.resolve(cookie);
    expect(counter.writes).toBe(1);
    expect(renewed?.idleExpiresAt.getTime()).toBe(Date.UTC(2026, 10, 30, 6) + 66 * SECOND + 1);
    // Unused for the whole idle lifetime since that renewal: ended, whatever the memory held.
    advance(60 * SECOND);
    expect(await store.resolve(cookie)).toBeUndefined();
  });

  it('acts at once on a session it ends, and on a sign-out of every session of the user', async () => {
    const { store, counter, signIn } = storeWith({
      idleMinutes: 120,
      absoluteHours: 24,
      recheckSeconds: 300,
    });
    const first = await signIn('eve');
    const second = await signIn('eve');
    const third = await signIn('eve');
    for (const cookie of [first, second, third]) await store.resolve(cookie);
    await store.delete(first);
    expect(await store.resolve(first)).toBeUndefined();
    expect(await store.resolve(second)).toBeDefined();
    counter.reset();
    await store.resolve(second);
    expect(counter.reads).toBe(0);
    await store.deleteAllFor('eve-oid.tenant');
    expect(await store.resolve(second)).toBeUndefined();
    expect(await store.resolve(third)).toBeUndefined();
  });
});
