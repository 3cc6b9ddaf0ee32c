// 4. Refresh storm: users whose access tokens MSAL already counts as expired (issued with a lifetime
// under its 5-minute refresh margin), each hit by several concurrent requests spread over the app
// processes. Counts the IdP's refresh grants, the answers, and afterwards checks every row and
// every user's session.
import type { EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import { HttpClient } from '../http.mts';
import { getTodos, runLoad, type SignedInUser } from '../load.mts';
import { coresUsed, cpuSeconds, type AppInstance } from '../stack.mts';
import type { TableCounts, TableMeter } from '../table-meter.mts';
import { isUsableCache, partitionKeyOf, type TokenRows } from '../token-rows.mts';

export interface StormResult {
  readonly users: number;
  readonly processes: number;
  readonly requestsPerUser: number;
  /** Requests in flight at most (the client's window). */
  readonly window: number;
  readonly requests: number;
  readonly drainMs: number;
  /** CPU cores each process used on average while the storm drained. */
  readonly cores: Record<string, number>;
  /** Table Storage requests while the storm drained, with --meter-all only. */
  readonly table?: Omit<TableCounts, 'durationsMs'>;
  /** RSS of each app process once the storm drained, MiB. */
  readonly rssAfterMiB: Record<string, number>;
  readonly byStatus: Record<string, number>;
  readonly failures: number;
  readonly firstFailure: string | undefined;
  readonly fiveXx: number;
  /** The first 5xx answers: process, time into the storm, status and problem body (for the logs). */
  readonly fiveXxAnswers: readonly string[];
  /** Users that got a 401 in the storm or in the check after it. */
  readonly signedOutUsers: number;
  readonly refreshGrants: number;
  readonly refreshGrantsPerUser: number;
  readonly refreshGrantsPerUserProcess: number;
  /** Other token requests the storm caused (e.g. authorization codes: should be 0). */
  readonly otherTokenRequests: number;
  /** Every token-cache row in the table (all users, not only the storm's). */
  readonly rowsChecked: number;
  /** Rows that do not decrypt or hold no usable account, plus storm users without a row. */
  readonly unreadableRows: number;
  /** One request per user after the storm: answers, and refresh grants it caused (should be 0). */
  readonly after: { readonly byStatus: Record<string, number>; readonly refreshGrants: number };
}

export async function refreshStorm(options: {
  apps: readonly AppInstance[];
  users: readonly SignedInUser[];
  requestsPerUser: number;
  window: number;
  emulator: EntraEmulator;
  rows: TokenRows;
  /** The counting proxy, when the app processes go through it (--meter-all). */
  meter?: TableMeter;
  log: (message: string) => void;
}): Promise<StormResult> {
  const { apps, users, emulator } = options;
  const perUser = options.requestsPerUser;
  // A browser waits as long as it takes: only a hung request (2 minutes) counts as unanswered.
  const client = new HttpClient({ timeoutMs: 120_000 });
  const signedOut = new Set<number>();
  const tokenBefore = emulator.counters().token;
  let fiveXx = 0;
  const fiveXxAnswers: string[] = [];
  let stormStarted = 0;
  try {
    options.log(
      `storm: ${users.length} users × ${perUser} requests over ${apps.length} processes, ${options.window} in flight`,
    );
    options.meter?.reset();
    const cpuBefore = cpuSeconds();
    stormStarted = performance.now();
    const storm = await runLoad({
      concurrency: options.window,
      total: users.length * perUser,
      send: async (index) => {
        const userIndex = Math.floor(index / perUser);
        const app = apps[(userIndex + (index % perUser)) % apps.length] as AppInstance;
        const answer = await getTodos(client, app, users[userIndex] as SignedInUser);
        if (answer.status === 401) signedOut.add(userIndex);
        if (answer.status >= 500) {
          fiveXx += 1;
          // Which process, when and what it said: the process's log has the cause at that time.
          if (fiveXxAnswers.length < 10) {
            fiveXxAnswers.push(
              `${app.name} at ${new Date().toISOString()} (+${Math.round(performance.now() - stormStarted)} ms), user ${userIndex}: ${answer.status} ${answer.body.toString('utf8').slice(0, 300)}`,
            );
          }
        }
        return answer;
      },
      progressEvery: 1000,
      onProgress: (done) => options.log(`storm: ${done}/${users.length * perUser} answered`),
    });
    const cores = coresUsed(cpuBefore, cpuSeconds(), storm.elapsedMs / 1000);
    const { durationsMs: _durations, ...table } = options.meter?.counts() ?? { durationsMs: [] };
    const rssAfterMiB = Object.fromEntries(
      apps.map((app) => [app.name, Math.round(app.rss() / 1024 / 1024)]),
    );
    const tokenAfter = emulator.counters().token;
    const refreshGrants = (tokenAfter.refresh_token ?? 0) - (tokenBefore.refresh_token ?? 0);
    const allBefore = Object.values(tokenBefore).reduce((sum, count) => sum + count, 0);
    const allAfter = Object.values(tokenAfter).reduce((sum, count) => sum + count, 0);
    options.log(`storm: drained in ${Math.round(storm.elapsedMs)} ms, ${refreshGrants} refreshes`);

    options.log('storm: reading every row of the table with the app’s keys');
    const keys = new Set(await options.rows.partitionKeys());
    // A storm user without a row lost their tokens: count it with the rows that do not open.
    let unreadableRows = users.filter(
      ({ user }) => !keys.has(partitionKeyOf(user.oid, emulator.tenantId)),
    ).length;
    for (const key of keys) {
      try {
        const serialized = await options.rows.read(key);
        if (serialized === undefined || !isUsableCache(serialized)) unreadableRows += 1;
      } catch {
        unreadableRows += 1;
      }
    }

    options.log('storm: one more request per user, which must be served from the cache');
    const beforeCheck = emulator.counters().token.refresh_token ?? 0;
    const check = await runLoad({
      concurrency: 16,
      total: users.length,
      send: async (index) => {
        const answer = await getTodos(
          client,
          apps[index % apps.length] as AppInstance,
          users[index] as SignedInUser,
        );
        if (answer.status === 401) signedOut.add(index);
        return answer;
      },
    });
    const checkRefreshes = (emulator.counters().token.refresh_token ?? 0) - beforeCheck;

    return {
      users: users.length,
      processes: apps.length,
      requestsPerUser: perUser,
      window: options.window,
      requests: storm.requests,
      drainMs: storm.elapsedMs,
      cores,
      ...('roundTrips' in table && table.roundTrips > 0 ? { table } : {}),
      rssAfterMiB,
      byStatus: storm.byStatus,
      failures: storm.failures,
      firstFailure: storm.firstFailure,
      fiveXx,
      fiveXxAnswers,
      signedOutUsers: signedOut.size,
      refreshGrants,
      refreshGrantsPerUser: refreshGrants / users.length,
      refreshGrantsPerUserProcess: refreshGrants / (users.length * apps.length),
      otherTokenRequests: allAfter - allBefore - refreshGrants,
      rowsChecked: keys.size,
      unreadableRows,
      after: { byStatus: check.byStatus, refreshGrants: checkRefreshes },
    };
  } finally {
    client.close();
  }
}
