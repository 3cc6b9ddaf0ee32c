// Reads users' token-cache rows the way the app does, with the app's own modules from dist/ and
// the settings and keys the app processes were given: to check that every row still decrypts, and
// to take a user's access token for calling the API directly.
import { createRequire } from 'node:module';
import type * as ConfigModule from '../src/lib/config.ts';
import type * as KeyRingModule from '../src/lib/tokens/key-ring.ts';
import type * as TableStorageModule from '../src/lib/tokens/table-storage.ts';
import type * as TokenCacheStoreModule from '../src/lib/tokens/token-cache-store.ts';

const require = createRequire(import.meta.url);

export interface TokenRows {
  /** The user's decrypted MSAL cache (JSON text), or undefined when the user has no row. */
  read(partitionKey: string): Promise<string | undefined>;
  /** Partition keys of every token-cache row in the table. */
  partitionKeys(): Promise<string[]>;
}

export function openTokenRows(settings: Readonly<Record<string, string>>): TokenRows {
  const { loadConfig } = require('../dist/lib/config.js') as typeof ConfigModule;
  const { KeyRing } = require('../dist/lib/tokens/key-ring.js') as typeof KeyRingModule;
  const { createTableClient, TokenTable } =
    require('../dist/lib/tokens/table-storage.js') as typeof TableStorageModule;
  const { TokenCacheStore, TOKEN_CACHE_ROW_KEY } =
    require('../dist/lib/tokens/token-cache-store.js') as typeof TokenCacheStoreModule;

  const config = loadConfig(settings);
  const client = createTableClient(config.tokenCache.connection, config.tokenCache.tableName);
  const store = new TokenCacheStore(new TokenTable(client), new KeyRing(config.tokenCache.keys));
  return {
    read: async (partitionKey) => (await store.read(partitionKey))?.serialized,
    partitionKeys: async () => {
      const keys: string[] = [];
      const rows = client.listEntities({
        queryOptions: { filter: `RowKey eq '${TOKEN_CACHE_ROW_KEY}'`, select: ['PartitionKey'] },
      });
      for await (const row of rows) if (row.partitionKey !== undefined) keys.push(row.partitionKey);
      return keys;
    },
  };
}

interface SerializedCache {
  Account?: Record<string, { home_account_id?: string }>;
  AccessToken?: Record<string, { secret?: string; target?: string; expires_on?: string }>;
  RefreshToken?: Record<string, { secret?: string }>;
}

/** MSAL's partition of a user: `<oid>.<tid>` (from Entra's client_info). */
export function partitionKeyOf(oid: string, tenantId: string): string {
  return `${oid}.${tenantId}`;
}

/** Whether a decrypted cache holds what the user needs: an account and a refresh token. */
export function isUsableCache(serialized: string): boolean {
  const cache = JSON.parse(serialized) as SerializedCache;
  return (
    Object.keys(cache.Account ?? {}).length === 1 &&
    Object.keys(cache.RefreshToken ?? {}).length >= 1
  );
}

/** The access token in the cache whose scopes include `scope`, still valid for a minute or more. */
export function accessTokenFor(serialized: string, scope: string): string | undefined {
  const cache = JSON.parse(serialized) as SerializedCache;
  const now = Date.now() / 1000;
  for (const entry of Object.values(cache.AccessToken ?? {})) {
    const scopes = (entry.target ?? '').toLowerCase().split(' ');
    if (scopes.includes(scope.toLowerCase()) && Number(entry.expires_on) > now + 60) {
      return entry.secret;
    }
  }
  return undefined;
}
