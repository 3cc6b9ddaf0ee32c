import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../dev/azurite.mts';
import {
  Cluster,
  crashLines,
  privateUsers,
  tokenStoreOn,
  type Caller,
  type TokenCacheStore,
} from './support/cluster.ts';
import { report } from './support/report.ts';
import { proxiesFor, TableProxy } from './support/table-proxy.ts';
import { Traffic, until } from './support/traffic.ts';

// A process killed (SIGKILL) in the middle of writing a token-cache row leaves the row either as
// it was or as the writer meant it, never half of each: a row is one entity, and a table entity
// write is atomic, whatever the number of chunks the cache is split into. Proved twice: writers
// of multi-chunk rows killed mid-burst (and mid-upload, by a proxy that forwards half a write),
// and app processes killed while refreshing users' tokens.

describe('a writer killed mid-write (multi-chunk rows)', () => {
  const partitions = ['w1.tenant', 'w2.tenant', 'w3.tenant'];
  const key = randomBytes(32).toString('base64');
  const tableName = `killed${randomBytes(4).toString('hex')}`;
  let azurite: Azurite;
  let proxy: TableProxy;
  let store: TokenCacheStore;
  /** The last version each partition's writer had confirmed before it was killed. */
  const acked = new Map<string, number>(partitions.map((partition) => [partition, 0]));

  beforeAll(async () => {
    azurite = await startAzurite();
    proxy = await new TableProxy(() => ({ host: '127.0.0.1', port: azurite.tablePort })).listen();
    store = tokenStoreOn(azurite.connectionString, tableName, key);
  });

  afterAll(async () => {
    await proxy?.close();
    await azurite?.stop();
  });

  /** A writer process, and its confirmed writes as they come: `next()` gives the next line. */
  function startWriter() {
    const child = spawn(
      process.execPath,
      [
        'test/resilience/support/cache-writer.mts',
        JSON.stringify({
          connectionString: proxy.connectionString,
          tableName,
          key,
          partitions,
          // Random, so incompressible: about 350 KB sealed, six 64 KiB chunks a row.
          bytes: 256 * 1024,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const exited = once(child, 'exit');
    /** Notes a confirmed write; true for a `wrote` line. */
    const note = (line: string): boolean => {
      const [, partition, version] = /^wrote (\S+) (\d+)$/.exec(line) ?? [];
      if (partition === undefined) return false;
      acked.set(partition, Number(version));
      return true;
    };
    return {
      child,
      next: async () => (await lines.next()).value as string | undefined,
      note,
      /** After the kill: every write it confirmed before it died, and its exit. */
      async drain() {
        for (;;) {
          const line: IteratorResult<string> = await lines.next();
          if (line.done === true) break;
          note(line.value);
        }
        await exited;
      },
    };
  }

  /** Reads every row with the app's store: each must open and be a whole version. */
  async function expectWholeRows(cutPartition?: string): Promise<Record<string, number>> {
    const versions: Record<string, number> = {};
    for (const partition of partitions) {
      const row = await store.read(partition);
      if (row === undefined) {
        expect(acked.get(partition), `${partition} lost its row`).toBe(0);
        continue;
      }
      const cache = JSON.parse(row.serialized) as {
        Version: number;
        Digest: string;
        RefreshToken: { rt: { secret: string } };
      };
      const filler = cache.RefreshToken.rt.secret.slice(`v${cache.Version}.`.length);
      expect(createHash('sha256').update(filler).digest('hex'), partition).toBe(cache.Digest);
      expect(filler.length).toBeGreaterThan(256 * 1024);
      const confirmed = acked.get(partition) ?? 0;
      // The old row, or the write the killed process had sent; a cut write never lands.
      expect([confirmed, confirmed + 1], partition).toContain(cache.Version);
      if (partition === cutPartition) expect(cache.Version, partition).toBe(confirmed);
      versions[partition] = cache.Version;
      acked.set(partition, cache.Version);
    }
    return versions;
  }

  it('killed at random points of a write burst: every row opens, as the old or the new version', async () => {
    const outcomes: Record<string, number>[] = [];
    for (const writesBeforeKill of [1, 4, 7, 10, 13, 2]) {
      const writer = startWriter();
      expect(await writer.next()).toBe('ready');
      let seen = 0;
      while (seen < writesBeforeKill) {
        const line = await writer.next();
        if (line === undefined) throw new Error('the writer exited');
        if (writer.note(line)) seen += 1;
      }
      // The other partitions' writes are in flight right now.
      writer.child.kill('SIGKILL');
      await writer.drain();
      outcomes.push(await expectWholeRows());
    }
    expect(proxy.counts.writes).toBeGreaterThan(outcomes.length * partitions.length);
    report('writer killed mid-burst (multi-chunk rows)', {
      kills: outcomes.length,
      versionsAfterEachKill: outcomes,
      rowWritesSeen: proxy.counts.writes,
    });
  });

  it('killed while its write is half uploaded: the row stays the old version', async () => {
    const cuts: string[] = [];
    for (let round = 0; round < 3; round += 1) {
      const writer = startWriter();
      expect(await writer.next()).toBe('ready');
      let cutPartition: string | undefined;
      proxy.onWrite = (write) => {
        // A row write (conditional on the row's ETag), not the table's creation.
        if (cutPartition !== undefined || !write.conditional) return 'forward';
        cutPartition = /PartitionKey='([^']+)'/.exec(decodeURIComponent(write.path))?.[1] ?? '?';
        writer.child.kill('SIGKILL');
        return 'cut';
      };
      await writer.drain();
      proxy.onWrite = undefined;
      expect(cutPartition).toBeDefined();
      cuts.push(cutPartition ?? '');
      await expectWholeRows(cutPartition);
    }
    expect(proxy.counts.cut).toBe(3);
    for (const cut of cuts) expect(partitions).toContain(cut);
    report('writer killed mid-upload (half a write reached Azurite)', { cuts });
  });
});

describe('app processes killed while refreshing tokens', () => {
  const APPS = 3;
  const users = privateUsers('killed', ['nia', 'oli', 'pam', 'quy', 'ras', 'sol']);
  let azurite: Azurite;
  let proxies: TableProxy[];
  let cluster: Cluster;
  let callers: Caller[];

  beforeAll(async () => {
    azurite = await startAzurite();
    proxies = await proxiesFor(azurite, APPS);
    cluster = await Cluster.start({
      users,
      apps: APPS,
      storage: { kind: 'shared', connectionString: azurite.connectionString },
      connectionStringFor: (index) => proxies[index]?.connectionString ?? '',
      // Inside MSAL's renewal margin: every call refreshes and writes the user's row.
      lifetimes: { accessTokenSeconds: 120 },
    });
    callers = [];
    for (const user of users) callers.push(await cluster.signIn(user));
  });

  afterAll(async () => {
    await cluster?.stop();
    for (const proxy of proxies ?? []) await proxy.close();
    await azurite?.stop();
  });

  it('every row opens afterwards, and every user refreshes on', async () => {
    let turn = 0;
    const traffic = new Traffic(
      () => {
        turn += 1;
        const caller = callers[turn % callers.length] as Caller;
        const app = Math.floor(turn / callers.length) % APPS;
        return { kind: 'api', app, send: () => caller.call('GET', '/api/todos', { app }) };
      },
      { workers: 6, pauseMs: 5, maxRequests: 4000 },
    );
    const kills: { app: number; during: string }[] = [];
    traffic.start();
    try {
      for (const [app, decision] of [
        [1, 'forward'],
        [2, 'cut'],
        [1, 'cut'],
        [2, 'forward'],
      ] as const) {
        await until(
          'steady refreshing',
          () => traffic.samples.filter((s) => s.status === 200).length >= 20 * (kills.length + 1),
        );
        // Kill the process the moment its next row write reaches the proxy.
        const killsBefore = kills.length;
        (proxies[app] as TableProxy).onWrite = (write) => {
          if (!write.conditional) return 'forward';
          (proxies[app] as TableProxy).onWrite = undefined;
          const pid = cluster.apps[app]?.pid ?? 0;
          // Only ever the app process itself (a pid of 0 would mean this process group).
          if (pid > 0) process.kill(pid, 'SIGKILL');
          kills.push({
            app,
            during: decision === 'cut' ? 'half-uploaded row write' : 'row write in flight',
          });
          return decision;
        };
        await until(`a row write by app process ${app}`, () => kills.length > killsBefore);
        await cluster.killApp(app);
        await cluster.restartApp(app);
      }
    } finally {
      await traffic.stop();
    }

    // Every row opens with the app's store and holds its user's account and refresh token.
    const store = cluster.tokenStore();
    for (const user of users) {
      const row = await store.read(cluster.homeAccountId(user));
      const cache = JSON.parse(row?.serialized ?? '{}') as Record<string, Record<string, unknown>>;
      expect(Object.keys(cache.Account ?? {}), user.preferred_username).toHaveLength(1);
      expect(Object.keys(cache.RefreshToken ?? {}), user.preferred_username).toHaveLength(1);
    }
    // And each refresh token still works, on every (restarted) process.
    for (const [index, caller] of callers.entries()) {
      const answer = await caller.call('GET', '/api/todos', { app: index % APPS });
      expect(answer.status, answer.text).toBe(200);
    }
    const failures = traffic.samples.filter((s) => s.status !== 200);
    // Only requests to a process that was being killed went unanswered; nothing else failed.
    for (const sample of failures) expect(sample.status, sample.error ?? sample.text).toBe(0);
    report('app processes killed while refreshing', {
      kills,
      requests: traffic.samples.length,
      unansweredByKilledProcesses: failures.length,
      rowWrites: proxies.reduce((sum, proxy) => sum + proxy.counts.conditionalWrites, 0),
      cutWrites: proxies.reduce((sum, proxy) => sum + proxy.counts.cut, 0),
    });
    expect(crashLines(cluster.output())).toEqual([]);
  });
});
