import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../dev/azurite.mts';
import type { TestUser } from '../../dev/entra-emulator/emulator.mts';
import { Cluster, crashLines, privateUsers, type Caller } from './support/cluster.ts';
import { report } from './support/report.ts';
import type { TableProxy } from './support/table-proxy.ts';
import { proxiesFor } from './support/table-proxy.ts';

// A 412 storm: six app processes refresh one user's tokens at the same moment, wave after wave,
// so their conditional writes of the same row keep losing races. Access tokens live 2 minutes,
// inside MSAL's 5-minute renewal margin, so every token acquisition is a refresh and a write.
// Within one process concurrent requests share one acquisition; across processes each one writes.
//
// The bound: a writer retries at most MAX_WRITE_ATTEMPTS times, and every lost race is another
// writer's success, each writer succeeding once. So among W writers of a wave at most
// max(0, W - MAX_WRITE_ATTEMPTS) can give up (503), and with W <= MAX_WRITE_ATTEMPTS none does.
// W is counted at the IdP: one refresh per writer.

const MAX_WRITE_ATTEMPTS = 5; // src/lib/tokens/table-token-cache.ts (README: "at most 5 times")
const APPS = 6;
const [max] = privateUsers('storm', ['max']) as [TestUser];
let azurite: Azurite;
let proxies: TableProxy[];
let cluster: Cluster;
let caller: Caller;

beforeAll(async () => {
  azurite = await startAzurite();
  proxies = await proxiesFor(azurite, APPS);
  cluster = await Cluster.start({
    users: [max],
    apps: APPS,
    storage: { kind: 'shared', connectionString: azurite.connectionString },
    connectionStringFor: (index) => proxies[index]?.connectionString ?? '',
    lifetimes: { accessTokenSeconds: 120 },
  });
  caller = await cluster.signIn(max);
});

afterAll(async () => {
  await cluster?.stop();
  for (const proxy of proxies ?? []) await proxy.close();
  await azurite?.stop();
});

const refreshes = () => cluster.emulator.counters().token.refresh_token ?? 0;
const total = (pick: (proxy: TableProxy) => number) =>
  proxies.reduce((sum, proxy) => sum + pick(proxy), 0);

interface Wave {
  readonly writers: number;
  readonly lostRaces: number;
  readonly rowWrites: number;
  readonly answers: Record<string, number>;
  readonly gaveUp: number;
}

/** Every one of `apps` processes gets `perApp` requests at the same moment. */
async function wave(apps: number, perApp: number): Promise<Wave> {
  const [refreshesBefore, lostBefore, writesBefore] = [
    refreshes(),
    total((proxy) => proxy.counts.preconditionFailed),
    total((proxy) => proxy.counts.conditionalWrites),
  ];
  const answers = await Promise.all(
    Array.from({ length: apps * perApp }, (_, index) =>
      caller.call('GET', '/api/todos', { app: index % apps }),
    ),
  );
  const statuses: Record<string, number> = {};
  for (const answer of answers) statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
  for (const answer of answers) {
    // Success, or giving up on a row that kept changing (transient, Retry-After): nothing else.
    expect([200, 503], answer.text).toContain(answer.status);
    if (answer.status === 503) expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
  }
  return {
    writers: refreshes() - refreshesBefore,
    lostRaces: total((proxy) => proxy.counts.preconditionFailed) - lostBefore,
    rowWrites: total((proxy) => proxy.counts.conditionalWrites) - writesBefore,
    answers: statuses,
    gaveUp: statuses[503] ?? 0,
  };
}

/**
 * A writer that gave up fails the requests that shared its acquisition (at most the 3 a process
 * gets in a wave): so at most 3 * max(0, W - MAX_WRITE_ATTEMPTS) answers of a wave are 503, and
 * none when W <= MAX_WRITE_ATTEMPTS.
 */
function expectWithinBound(w: Wave): void {
  expect(w.gaveUp, JSON.stringify(w)).toBeLessThanOrEqual(
    3 * Math.max(0, w.writers - MAX_WRITE_ATTEMPTS),
  );
}

async function expectIntactRow(): Promise<void> {
  // The row opens with the app's own code (dist/) and holds one account and its refresh token.
  const row = await cluster.tokenStore().read(cluster.homeAccountId(max));
  expect(row).toBeDefined();
  const cache = JSON.parse(row?.serialized ?? '{}') as Record<string, Record<string, unknown>>;
  expect(Object.keys(cache.Account ?? {})).toHaveLength(1);
  expect(Object.keys(cache.RefreshToken ?? {})).toHaveLength(1);
}

describe('a 412 storm on one user row', () => {
  it('four processes: writes race and lose, retries stay within the bound, no refresh token is lost', async () => {
    const waves: Wave[] = [];
    for (let round = 0; round < 8; round += 1) waves.push(await wave(4, 3));
    report('412 storm, 4 processes', {
      waves: waves.length,
      requests: waves.length * 12,
      writersPerWave: waves.map((w) => w.writers),
      lostRacesPerWave: waves.map((w) => w.lostRaces),
      conditionalWritesPerWave: waves.map((w) => w.rowWrites),
      gaveUp: waves.reduce((sum, w) => sum + w.gaveUp, 0),
    });
    // A storm it was: writes raced and lost.
    expect(waves.reduce((sum, w) => sum + w.lostRaces, 0)).toBeGreaterThan(0);
    for (const w of waves) expectWithinBound(w);
    await expectIntactRow();
  });

  it('more writers than attempts: giving up stays within the bound; the row survives whole', async () => {
    const waves: Wave[] = [];
    for (let round = 0; round < 8; round += 1) waves.push(await wave(APPS, 3));
    report('412 storm, 6 processes', {
      waves: waves.length,
      requests: waves.length * APPS * 3,
      writersPerWave: waves.map((w) => w.writers),
      lostRacesPerWave: waves.map((w) => w.lostRaces),
      gaveUpPerWave: waves.map((w) => w.gaveUp),
      boundPerWave: waves.map((w) => Math.max(0, w.writers - MAX_WRITE_ATTEMPTS)),
    });
    for (const w of waves) expectWithinBound(w);
    await expectIntactRow();
  });

  it('afterwards the refresh token in the row works: a forced refresh succeeds on every process', async () => {
    for (let app = 0; app < APPS; app += 1) {
      const before = refreshes();
      cluster.api.setFault({ mode: 'reject_token', count: 1 });
      const answer = await caller.call('GET', '/api/todos', { app });
      expect(answer.status, answer.text).toBe(200);
      expect(refreshes()).toBeGreaterThan(before);
    }
    await expectIntactRow();
    expect(crashLines(cluster.output())).toEqual([]);
  });
});
