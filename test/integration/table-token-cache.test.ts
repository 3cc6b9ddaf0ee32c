import { randomBytes } from 'node:crypto';
import type { TokenCacheContext } from '@azure/msal-node';
import { describe, expect, inject, it } from 'vitest';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import { TableTokenCache } from '../../src/lib/tokens/table-token-cache.ts';
import { TokenCacheStore } from '../../src/lib/tokens/token-cache-store.ts';
import { tokenTableOn } from '../support/table-storage.ts';

const account = { home_account_id: 'oid.tid', environment: 'login.example' };

/** The part of MSAL's context the plugin uses, holding one request's in-memory cache. */
function context(initial: string) {
  let memory = initial;
  let changed = false;
  const ctx = {
    get cacheHasChanged() {
      return changed;
    },
    tokenCache: {
      serialize: () => memory,
      deserialize: (serialized: string) => {
        memory = serialized;
      },
    },
    change(update: (cache: Record<string, Record<string, unknown>>) => void) {
      const cache = JSON.parse(memory) as Record<string, Record<string, unknown>>;
      update(cache);
      memory = JSON.stringify(cache);
      changed = true;
    },
    memory: () => JSON.parse(memory) as Record<string, Record<string, unknown>>,
  };
  return ctx as typeof ctx & TokenCacheContext;
}

describe('TableTokenCache', () => {
  const { table, counter } = tokenTableOn(inject('azuriteConnectionString'));
  const store = new TokenCacheStore(table, new KeyRing([randomBytes(32)]));

  it('reads once per request and writes only when MSAL changed the cache', async () => {
    await store.write('oid.tid', JSON.stringify({ Account: { a: account } }), undefined);
    counter.reset();
    const plugin = new TableTokenCache(store, 'oid.tid');
    const ctx = context('{}');
    await plugin.beforeCacheAccess(ctx);
    await plugin.afterCacheAccess(ctx);
    await plugin.beforeCacheAccess(ctx);
    await plugin.afterCacheAccess(ctx);
    expect(counter.reads).toBe(1);
    expect(counter.writes).toBe(0);
    expect(ctx.memory()).toEqual({ Account: { a: account } });
  });

  it('merges with a concurrent writer after a 412, keeping both changes', async () => {
    const pk = 'race.tid';
    const initial = {
      Account: { a: account },
      RefreshToken: { rt: { secret: 'rt-0' } },
      AccessToken: {},
    };
    await store.write(pk, JSON.stringify(initial), undefined);
    const [first, second] = [new TableTokenCache(store, pk), new TableTokenCache(store, pk)];
    const [ctxA, ctxB] = [context('{}'), context('{}')];
    await first.beforeCacheAccess(ctxA);
    await second.beforeCacheAccess(ctxB);
    ctxA.change((cache) => {
      cache.RefreshToken = { rt: { secret: 'rt-A' } };
      cache.AccessToken = { read: { secret: 'at-read-A' } };
    });
    ctxB.change((cache) => {
      cache.AccessToken = { write: { secret: 'at-write-B' } };
    });
    await first.afterCacheAccess(ctxA);
    counter.reset();
    await second.afterCacheAccess(ctxB);
    // One failed conditional write, one read to merge, one successful write.
    expect(counter.counts.PUT).toBe(2);
    expect(counter.reads).toBe(1);
    expect(JSON.parse((await store.read(pk))?.serialized ?? '')).toEqual({
      Account: { a: account },
      RefreshToken: { rt: { secret: 'rt-A' } },
      AccessToken: { read: { secret: 'at-read-A' }, write: { secret: 'at-write-B' } },
    });
    expect(ctxB.memory().AccessToken).toHaveProperty('read');
  });

  it('takes the partition from the account at sign-in and merges with an existing row', async () => {
    const other = { home_account_id: 'newcomer.tid', environment: 'login.example' };
    await store.write(
      'newcomer.tid',
      JSON.stringify({ Account: { o: other }, AccessToken: { x: { secret: 'x' } } }),
      undefined,
    );
    const plugin = new TableTokenCache(store);
    const ctx = context('{}');
    await plugin.beforeCacheAccess(ctx);
    ctx.change((cache) => {
      cache.Account = { o: other };
      cache.RefreshToken = { rt: { secret: 'fresh' } };
    });
    await plugin.afterCacheAccess(ctx);
    expect(JSON.parse((await store.read('newcomer.tid'))?.serialized ?? '')).toEqual({
      Account: { o: other },
      AccessToken: { x: { secret: 'x' } },
      RefreshToken: { rt: { secret: 'fresh' } },
    });
  });

  it('deletes the row when no account is left, and does not bring back a row deleted meanwhile', async () => {
    await store.write('leaving.tid', JSON.stringify({ Account: { a: account } }), undefined);
    const plugin = new TableTokenCache(store, 'leaving.tid');
    const ctx = context('{}');
    await plugin.beforeCacheAccess(ctx);
    ctx.change((cache) => {
      cache.Account = {};
    });
    await plugin.afterCacheAccess(ctx);
    expect(await store.read('leaving.tid')).toBeUndefined();

    await store.write('gone.tid', JSON.stringify({ Account: { a: account } }), undefined);
    const late = new TableTokenCache(store, 'gone.tid');
    const lateCtx = context('{}');
    await late.beforeCacheAccess(lateCtx);
    await store.delete('gone.tid');
    lateCtx.change((cache) => {
      cache.AccessToken = { read: { secret: 'late' } };
    });
    await late.afterCacheAccess(lateCtx);
    expect(await store.read('gone.tid')).toBeUndefined();
  });
});
