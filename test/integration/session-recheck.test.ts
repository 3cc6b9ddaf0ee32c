import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TestUser } from '../../dev/entra-emulator/emulator.mts';
import { Cluster, privateUsers, type Caller } from '../resilience/support/cluster.ts';
import { TableProxy } from '../resilience/support/table-proxy.ts';

// SESSION_RECHECK_SECONDS across two app processes sharing one table (README, DESIGN.md): an
// instance serves a session and its access token from memory, with no Table round trip, until the
// window ends, then reads the rows again. Sign-out, a revocation and a refresh act at once on the
// instance that sees them, and within the window on the other. Neither bound depends on timing:
// each app's Table traffic goes through a counting proxy, and the window is 60 s while the test
// moves app 1's clock past it on demand (test/support/controlled-clock.mts), so "before" and
// "after" are whatever the test says, however slow the machine.

const RECHECK_SECONDS = 60;
const [ann, ben, cat, dee] = privateUsers('recheck', ['ann', 'ben', 'cat', 'dee']) as [
  TestUser,
  TestUser,
  TestUser,
  TestUser,
];
const CLOCK = pathToFileURL(new URL('../support/controlled-clock.mts', import.meta.url).pathname);

let proxies: TableProxy[];
let cluster: Cluster;

beforeAll(async () => {
  const connectionString = inject('azuriteConnectionString');
  const tableEndpoint = new URL(/TableEndpoint=([^;]+)/.exec(connectionString)?.[1] ?? '');
  proxies = await Promise.all(
    [0, 1].map(() =>
      new TableProxy(() => ({
        host: tableEndpoint.hostname,
        port: Number(tableEndpoint.port),
      })).listen(),
    ),
  );
  cluster = await Cluster.start({
    users: [ann, ben, cat, dee],
    apps: 2,
    storage: { kind: 'shared', connectionString },
    connectionStringFor: (index) => proxies[index]?.connectionString ?? '',
    appEnv: {
      SESSION_RECHECK_SECONDS: String(RECHECK_SECONDS),
      NODE_OPTIONS: `--import ${CLOCK.href}`,
      TEST_CLOCK_STEP_MS: String((RECHECK_SECONDS + 1) * 1000),
    },
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  for (const proxy of proxies ?? []) await proxy.close();
});

/** Table round trips app process `app` has made so far. */
const tableRequests = (app: number) => proxies[app]?.counts.requests ?? 0;

/** Moves app process `app`'s clock past the recheck window, and waits until it has. */
async function passRecheckWindow(app: number): Promise<void> {
  const target = cluster.apps[app];
  if (target === undefined) throw new Error(`no app process ${app}`);
  const steps = () => target.output().match(/^test-clock: /gm)?.length ?? 0;
  const before = steps();
  process.kill(target.pid, 'SIGUSR2');
  const started = performance.now();
  while (steps() === before) {
    if (performance.now() - started > 10_000) throw new Error('the app did not move its clock');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The bearer token of the API's latest request. */
function lastTokenAtApi(): string | undefined {
  return cluster.api
    .requests()
    .at(-1)
    ?.headers.authorization?.replace(/^Bearer /, '');
}

/** A proxied GET through `app`, with the Table round trips it made there. */
async function getTodos(caller: Caller, app: number) {
  const before = tableRequests(app);
  const answer = await caller.call('GET', '/api/todos', { app });
  return { status: answer.status, tableRequests: tableRequests(app) - before };
}

/** Signs `user` in and has both app processes read the session once, so both hold it in memory. */
async function signedInOnBoth(user: TestUser): Promise<Caller> {
  const caller = await cluster.signIn(user);
  for (const app of [0, 1]) {
    const first = await getTodos(caller, app);
    expect(first).toMatchObject({ status: 200 });
    expect(first.tableRequests).toBeGreaterThan(0);
  }
  return caller;
}

describe(`SESSION_RECHECK_SECONDS=${RECHECK_SECONDS} on two app processes`, () => {
  it('serves steady calls from memory: no Table round trip until the window ends, then one read', async () => {
    const caller = await signedInOnBoth(ann);
    for (const app of [0, 1, 0, 1, 1]) {
      expect(await getTodos(caller, app)).toEqual({ status: 200, tableRequests: 0 });
    }
    await passRecheckWindow(1);
    expect(await getTodos(caller, 1)).toEqual({ status: 200, tableRequests: 1 });
    expect(await getTodos(caller, 1)).toEqual({ status: 200, tableRequests: 0 });
  });

  it('acts on a sign-out at once where it happens, and on the other instance at its next read', async () => {
    const caller = await signedInOnBoth(ben);
    const signOut = await caller.call('POST', '/auth/signout', { app: 0 });
    expect(signOut.status).toBe(303);

    expect((await getTodos(caller, 0)).status).toBe(401);
    expect((await caller.call('GET', '/auth/me', { app: 0 })).status).toBe(401);
    // App 1 has not read the table since: it still serves the session, from memory.
    expect(await getTodos(caller, 1)).toEqual({ status: 200, tableRequests: 0 });

    await passRecheckWindow(1);
    const after = await getTodos(caller, 1);
    expect(after.status).toBe(401);
    expect(after.tableRequests).toBeGreaterThan(0);
    expect(await cluster.rowKeysOf(ben)).toEqual([]);
  });

  it('acts on a revocation (a refresh the IdP rejects) at once where it is seen, and on the other instance at its next read', async () => {
    const caller = await signedInOnBoth(cat);
    expect(cluster.emulator.revokeUserGrants(cat.oid)).toBeGreaterThan(0);
    // The API refuses the token app 0 sends: app 0 refreshes, and the IdP refuses the refresh.
    cluster.api.setFault({ mode: 'reject_token', count: 1 });
    const revoked = await caller.call('GET', '/api/todos', { app: 0 });
    expect(revoked.status).toBe(401);
    expect(revoked.json?.loginUrl).toBeDefined();
    expect(cluster.api.counters().faults.reject_token).toBe(1);

    const again = await getTodos(caller, 0);
    expect(again.status).toBe(401);
    // App 1 still serves the access token it holds (the API accepts it until it expires).
    expect(await getTodos(caller, 1)).toEqual({ status: 200, tableRequests: 0 });

    await passRecheckWindow(1);
    const after = await getTodos(caller, 1);
    expect(after.status).toBe(401);
    expect(after.tableRequests).toBeGreaterThan(0);
    expect(await cluster.rowKeysOf(cat)).toEqual([]);
  });

  it('acts on a refresh made by another instance at once there, and on the other instance at its next read, without a refresh of its own', async () => {
    const caller = await signedInOnBoth(dee);
    await getTodos(caller, 1);
    const oldToken = lastTokenAtApi();
    const refreshes = () => cluster.emulator.counters().token.refresh_token ?? 0;
    const refreshesBefore = refreshes();

    // The API refuses app 0's token once: app 0 refreshes and writes the user's row.
    cluster.api.setFault({ mode: 'reject_token', count: 1 });
    expect((await getTodos(caller, 0)).status).toBe(200);
    expect(refreshes()).toBe(refreshesBefore + 1);
    const newToken = lastTokenAtApi();
    expect(newToken).not.toBe(oldToken);
    expect(await getTodos(caller, 0)).toEqual({ status: 200, tableRequests: 0 });
    expect(lastTokenAtApi()).toBe(newToken);

    // App 1 has not read the row since: it still sends the token it holds.
    expect(await getTodos(caller, 1)).toEqual({ status: 200, tableRequests: 0 });
    expect(lastTokenAtApi()).toBe(oldToken);

    await passRecheckWindow(1);
    expect(await getTodos(caller, 1)).toEqual({ status: 200, tableRequests: 1 });
    expect(lastTokenAtApi()).toBe(newToken);
    expect(refreshes()).toBe(refreshesBefore + 1);
  });
});
