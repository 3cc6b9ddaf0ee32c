// 2. I/O per proxied request in steady state, counted: Table Storage round trips through the
// counting proxy the metered app process uses, the emulator's request counters, the API's counters.
// The count spans several SESSION_RECHECK_SECONDS windows, so it includes the reads that end each
// window, and gives what one active session costs the table per minute.
import type { EntraEmulator, RequestCounts } from '../../dev/entra-emulator/emulator.mts';
import type { TodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import { HttpClient } from '../http.mts';
import { getTodos, type SignedInUser } from '../load.mts';
import type { AppInstance } from '../stack.mts';
import { summarize, type Summary } from '../stats.mts';
import type { TableCounts, TableMeter } from '../table-meter.mts';

export interface IoResult {
  readonly requests: number;
  readonly users: number;
  readonly errors: number;
  /** Per proxied request. */
  readonly perRequest: {
    readonly tableRoundTrips: number;
    readonly tablePointReads: number;
    readonly tableQueries: number;
    readonly tableWrites: number;
    /** Discovery, authorize, token and logout requests: the app's calls to the IdP. */
    readonly idpCalls: number;
    readonly apiCalls: number;
  };
  /** Wall time of the counted requests. */
  readonly seconds: number;
  /** Table round trips per signed-in user per minute of steady traffic. */
  readonly tableRoundTripsPerSessionMinute: number;
  /** The raw counts over the measured requests. */
  readonly table: Omit<TableCounts, 'durationsMs'>;
  /** Time of each Table round trip (Azurite, through the counting proxy), ms. */
  readonly tableRoundTripMs: Summary;
  /** Each metered request end to end, as the client saw it (Table calls through the proxy), ms. */
  readonly requestMs: Summary;
  readonly idp: RequestCounts;
  /** JWKS fetches are the API's own (to verify tokens), not the app's: shown apart. */
  readonly apiJwksFetches: number;
}

function idpTotal(counts: RequestCounts): number {
  const tokens = Object.values(counts.token).reduce((sum, count) => sum + count, 0);
  return counts.discovery + counts.authorize + counts.logout + tokens;
}

function minus(after: RequestCounts, before: RequestCounts): RequestCounts {
  const token: Record<string, number> = {};
  for (const grant of new Set([...Object.keys(after.token), ...Object.keys(before.token)])) {
    token[grant] = (after.token[grant] ?? 0) - (before.token[grant] ?? 0);
  }
  return {
    discovery: after.discovery - before.discovery,
    authorize: after.authorize - before.authorize,
    token,
    jwks: after.jwks - before.jwks,
    logout: after.logout - before.logout,
  };
}

export async function countIo(options: {
  app: AppInstance;
  users: readonly SignedInUser[];
  meter: TableMeter;
  emulator: EntraEmulator;
  api: TodoListApi;
  requests: number;
  /** Count for at least this long too (several recheck windows). */
  minDurationMs: number;
  warmup: number;
}): Promise<IoResult> {
  const client = new HttpClient({ maxSockets: 1 });
  const { users } = options;
  let errors = 0;
  let requestMs: number[] = [];
  const send = async (index: number) => {
    const user = users[index % users.length] as SignedInUser;
    const started = performance.now();
    const answer = await getTodos(client, options.app, user);
    requestMs.push(performance.now() - started);
    if (answer.status !== 200) errors += 1;
  };
  try {
    for (let index = 0; index < options.warmup; index += 1) await send(index);
    errors = 0;
    requestMs = [];
    options.meter.reset();
    const idpBefore = options.emulator.counters();
    const apiBefore = options.api.counters().requests;
    const started = performance.now();
    let requests = 0;
    while (requests < options.requests || performance.now() - started < options.minDurationMs) {
      await send(requests);
      requests += 1;
    }
    const seconds = (performance.now() - started) / 1000;
    const { durationsMs, ...table } = options.meter.counts();
    const idp = minus(options.emulator.counters(), idpBefore);
    const apiCalls = options.api.counters().requests - apiBefore;
    const per = (count: number) => count / requests;
    return {
      requests,
      users: users.length,
      errors,
      seconds,
      tableRoundTripsPerSessionMinute: table.roundTrips / users.length / (seconds / 60),
      perRequest: {
        tableRoundTrips: per(table.roundTrips),
        tablePointReads: per(table.pointReads),
        tableQueries: per(table.queries),
        tableWrites: per(table.writes),
        idpCalls: per(idpTotal(idp)),
        apiCalls: per(apiCalls),
      },
      table,
      tableRoundTripMs: summarize(durationsMs),
      requestMs: summarize(requestMs),
      idp,
      apiJwksFetches: idp.jwks,
    };
  } finally {
    client.close();
  }
}

export { idpTotal, minus as countsSince };
