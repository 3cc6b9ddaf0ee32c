// A token-cache writer in a process of its own, to be killed mid-write: with the built app's
// TokenCacheStore (dist/) it rewrites each given partition's row in a loop, each time with a
// larger-than-a-chunk cache of a new version, and prints `wrote <partition> <version>` after
// every write the table confirmed. The content of each version is checkable: its filler's digest.
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as KeyRingModule from '../../../src/lib/tokens/key-ring.ts';
import type * as TableStorageModule from '../../../src/lib/tokens/table-storage.ts';
import type * as TokenCacheStoreModule from '../../../src/lib/tokens/token-cache-store.ts';

const require = createRequire(import.meta.url);
const { KeyRing } = require('../../../dist/lib/tokens/key-ring.js') as typeof KeyRingModule;
const { createTableClient, TokenTable } =
  require('../../../dist/lib/tokens/table-storage.js') as typeof TableStorageModule;
const { TokenCacheStore, ConcurrentUpdateError } =
  require('../../../dist/lib/tokens/token-cache-store.js') as typeof TokenCacheStoreModule;

const { connectionString, tableName, key, partitions, bytes } = JSON.parse(
  process.argv[2] ?? '{}',
) as {
  connectionString: string;
  tableName: string;
  key: string;
  partitions: string[];
  bytes: number;
};
const store = new TokenCacheStore(
  new TokenTable(createTableClient({ kind: 'connectionString', connectionString }, tableName)),
  new KeyRing([Buffer.from(key, 'base64')]),
);

/** A cache of `version` for `partition`: an account and a large refresh token, self-checking. */
function cacheOf(partition: string, version: number, filler: string): string {
  return JSON.stringify({
    Account: { [partition]: { home_account_id: partition } },
    RefreshToken: { rt: { home_account_id: partition, secret: `v${version}.${filler}` } },
    Version: version,
    Digest: createHash('sha256').update(filler).digest('hex'),
  });
}

async function writeForever(partition: string): Promise<void> {
  const current = await store.read(partition);
  let etag = current?.etag;
  let version =
    current === undefined ? 0 : (JSON.parse(current.serialized) as { Version: number }).Version;
  for (;;) {
    version += 1;
    const filler = randomBytes(bytes).toString('base64');
    try {
      etag = await store.write(partition, cacheOf(partition, version, filler), etag);
      console.log(`wrote ${partition} ${version}`);
    } catch (error) {
      if (!(error instanceof ConcurrentUpdateError)) throw error;
      const row = await store.read(partition);
      etag = row?.etag;
      version = row === undefined ? 0 : (JSON.parse(row.serialized) as { Version: number }).Version;
    }
  }
}

console.log('ready');
await Promise.all(partitions.map((partition) => writeForever(partition)));
