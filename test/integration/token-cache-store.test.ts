import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startAzurite } from '../../dev/azurite.mts';
import { CacheTooLargeError, TokenStoreUnavailableError } from '../../src/lib/errors.ts';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import {
  ConcurrentUpdateError,
  TOKEN_CACHE_ROW_KEY,
  TokenCacheStore,
  UnreadableCacheError,
} from '../../src/lib/tokens/token-cache-store.ts';
import { tokenTableOn } from '../support/table-storage.ts';

const key = randomBytes(32);
const serialized = JSON.stringify({
  Account: { a: { home_account_id: 'alice.tenant' } },
  RefreshToken: { rt: { secret: 'refresh-token-secret-value-0123456789' } },
});

describe('TokenCacheStore on Azurite', () => {
  const { table } = tokenTableOn(inject('azuriteConnectionString'));
  const store = new TokenCacheStore(table, new KeyRing([key]));

  it('round-trips a cache and keeps no plaintext in the row', async () => {
    await store.write('alice.tenant', serialized, undefined);
    const row = await store.read('alice.tenant');
    expect(row?.serialized).toBe(serialized);
    const raw = await table.client.getEntity<Record<string, unknown>>(
      'alice.tenant',
      TOKEN_CACHE_ROW_KEY,
    );
    const rawText = JSON.stringify(raw) + Buffer.from(raw.D0 as Uint8Array).toString('latin1');
    expect(rawText).not.toContain('refresh-token-secret');
    expect(rawText).not.toContain('alice.tenant"}}');
    expect(raw.LastUsed).toBeInstanceOf(Date);
  });

  it('answers undefined for a user without a row', async () => {
    expect(await store.read('nobody.tenant')).toBeUndefined();
  });

  it('writes conditionally: a stale ETag or a second create is a concurrent update', async () => {
    const etag = await store.write('bob.tenant', serialized, undefined);
    await expect(store.write('bob.tenant', serialized, undefined)).rejects.toBeInstanceOf(
      ConcurrentUpdateError,
    );
    const next = await store.write('bob.tenant', serialized, etag);
    expect(next).not.toBe(etag);
    await expect(store.write('bob.tenant', serialized, etag)).rejects.toBeInstanceOf(
      ConcurrentUpdateError,
    );
  });

  it('does not open a row copied into another partition', async () => {
    await store.write('carol.tenant', serialized, undefined);
    const raw = await table.client.getEntity<Record<string, unknown>>(
      'carol.tenant',
      TOKEN_CACHE_ROW_KEY,
    );
    const { partitionKey: _p, rowKey: _r, etag: _e, timestamp: _t, ...properties } = raw;
    await table.client.createEntity({
      ...properties,
      partitionKey: 'mallory.tenant',
      rowKey: TOKEN_CACHE_ROW_KEY,
    });
    await expect(store.read('mallory.tenant')).rejects.toBeInstanceOf(UnreadableCacheError);
  });

  it('reads rows sealed with a retired key while it is configured, not after', async () => {
    const oldKey = randomBytes(32);
    await new TokenCacheStore(table, new KeyRing([oldKey])).write(
      'dave.tenant',
      serialized,
      undefined,
    );
    const rotated = new TokenCacheStore(table, new KeyRing([randomBytes(32), oldKey]));
    expect((await rotated.read('dave.tenant'))?.serialized).toBe(serialized);
    await expect(store.read('dave.tenant')).rejects.toThrow(/key that is not configured/);
  });

  it('treats a corrupted row as unreadable and names no content', async () => {
    await store.write('erin.tenant', serialized, undefined);
    const raw = await table.client.getEntity<Record<string, unknown>>(
      'erin.tenant',
      TOKEN_CACHE_ROW_KEY,
    );
    const corrupted = Buffer.from(raw.D0 as Uint8Array);
    corrupted[30] = (corrupted[30] ?? 0) ^ 0xff;
    await table.client.updateEntity(
      { partitionKey: 'erin.tenant', rowKey: TOKEN_CACHE_ROW_KEY, D0: corrupted },
      'Merge',
    );
    const error = await store.read('erin.tenant').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnreadableCacheError);
    expect((error as UnreadableCacheError).etag).toBeTruthy();
    expect((error as Error).message).not.toContain('secret');
  });

  it('splits a large cache over several binary properties', async () => {
    const large = JSON.stringify({
      Account: { a: { home_account_id: 'frank.tenant' } },
      AccessToken: Object.fromEntries(
        Array.from({ length: 60 }, (_, i) => [
          `at${i}`,
          { secret: randomBytes(2048).toString('base64') },
        ]),
      ),
    });
    await store.write('frank.tenant', large, undefined);
    const raw = await table.client.getEntity<Record<string, unknown>>(
      'frank.tenant',
      TOKEN_CACHE_ROW_KEY,
    );
    expect(raw.Chunks).toBeGreaterThan(1);
    expect((await store.read('frank.tenant'))?.serialized).toBe(large);
  });

  it('refuses a cache larger than a row, without writing part of it', async () => {
    const huge = JSON.stringify({ blob: randomBytes(1_100_000).toString('base64') });
    await expect(store.write('grace.tenant', huge, undefined)).rejects.toBeInstanceOf(
      CacheTooLargeError,
    );
    expect(await store.read('grace.tenant')).toBeUndefined();
  });

  it('deletes a row, and deleting a missing row is fine', async () => {
    await store.write('heidi.tenant', serialized, undefined);
    await store.delete('heidi.tenant');
    expect(await store.read('heidi.tenant')).toBeUndefined();
    await store.delete('heidi.tenant');
  });
});

describe('TokenCacheStore when Table Storage is down', () => {
  let azurite: Awaited<ReturnType<typeof startAzurite>>;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(async () => {
    await azurite.stop();
  });

  it('gives the transient TokenStoreUnavailableError for reads, writes and deletes', async () => {
    const { table } = tokenTableOn(azurite.connectionString);
    const store = new TokenCacheStore(table, new KeyRing([key]));
    await store.write('ivan.tenant', serialized, undefined);
    await azurite.stop();
    await expect(store.read('ivan.tenant')).rejects.toBeInstanceOf(TokenStoreUnavailableError);
    await expect(store.write('ivan.tenant', serialized, '*')).rejects.toBeInstanceOf(
      TokenStoreUnavailableError,
    );
    await expect(store.delete('ivan.tenant')).rejects.toBeInstanceOf(TokenStoreUnavailableError);
  });
});
