// `npm run bench`: builds the app, stands up the offline stack (Azurite, the Entra emulator, the
// sample API) and several local-host processes of the built app, measures the six figures of
// docs/performance.md in one run, prints them, writes bench/results/<date>.json, and exits 1 naming
// every budget missed (budgets: bench/budgets.mts). Loopback only; every load is bounded.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEV_IDENTITIES } from '../dev/dev-settings.mts';
import { findFreePort } from '../dev/ports.mts';
import { BUDGETS, checkBudget, type BudgetId, type BudgetResult } from './budgets.mts';
import { CookieJar } from '../dev/cookie-jar.mts';
import { HttpClient, signIn } from './http.mts';
import { forEachBounded, type SignedInUser } from './load.mts';
import { measureColdStart, type ColdStartResult } from './phases/cold-start.mts';
import { countIo, type IoResult } from './phases/io.mts';
import { measureMemory, type MemoryResult } from './phases/memory.mts';
import { measureOverhead, type OverheadResult } from './phases/overhead.mts';
import { refreshStorm, type StormResult } from './phases/storm.mts';
import { measureThroughput, type ThroughputLevel } from './phases/throughput.mts';
import {
  BENCH_PROCESS,
  OTHERS,
  benchUsers,
  cleanUp,
  coresUsed,
  cpuSeconds,
  tcpCounters,
  keepAppLogs,
  killChildrenNow,
  ROOT,
  SESSION_COOKIE,
  spawnApp,
  startStack,
  type AppInstance,
} from './stack.mts';
import { cpuIndexMs, round } from './stats.mts';
import { accessTokenFor, openTokenRows, partitionKeyOf } from './token-rows.mts';

const MEMORY_REQUESTS = 100_000;

const usage = `Usage: npm run bench [-- options]

  --memory-requests <n>     requests in the memory phase (${MEMORY_REQUESTS}; fewer for a quick look)
  --users <n>               signed-in users for throughput and memory (1000)
  --storm-users <n>         users in the refresh storm (1000)
  --processes <n>           app processes sharing one Azurite (4)
  --throughput-seconds <n>  seconds per concurrency level (10)
  --overhead-samples <n>    request pairs in the overhead phase (2000)
  --storm-window <n>        storm requests in flight at once (64 per process)
  --phases <list>           run only these, comma-separated: overhead, io, cold-start,
                            throughput, storm, memory (all); budgets of the others are skipped
  --profile <dir>           write V8 CPU profiles (--cpu-prof) of the first app process there,
                            and of the floor function in <dir>/floor-function
  --meter-all               route every app process's Table calls through the counting proxy
                            (the storm then reports them; other figures pay one more hop)
  --keep-logs               keep the app processes' logs (a temporary folder, printed at the end)
  --skip-build              use dist/ as it is instead of running npm run build first
  -h, --help`;

const PHASES = ['overhead', 'io', 'cold-start', 'throughput', 'storm', 'memory'] as const;
type Phase = (typeof PHASES)[number];

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) {
    console.error(`--${name} must be a positive whole number\n\n${usage}`);
    process.exit(2);
  }
  return number;
}

const { values: args } = parseArgs({
  options: {
    'memory-requests': { type: 'string' },
    users: { type: 'string' },
    'storm-users': { type: 'string' },
    processes: { type: 'string' },
    'throughput-seconds': { type: 'string' },
    'overhead-samples': { type: 'string' },
    'storm-window': { type: 'string' },
    phases: { type: 'string' },
    profile: { type: 'string' },
    'keep-logs': { type: 'boolean', default: false },
    'meter-all': { type: 'boolean', default: false },
    'skip-build': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(usage);
  process.exit(0);
}
const phases = new Set<Phase>(
  args.phases === undefined
    ? PHASES
    : args.phases.split(',').map((name) => {
        const phase = PHASES.find((candidate) => candidate === name.trim());
        if (phase === undefined) {
          console.error(`unknown phase ${name}\n\n${usage}`);
          process.exit(2);
        }
        return phase;
      }),
);
const options = {
  phases: [...phases],
  memoryRequests: positive('memory-requests', args['memory-requests'], MEMORY_REQUESTS),
  users: positive('users', args.users, 1000),
  stormUsers: positive('storm-users', args['storm-users'], 1000),
  processes: positive('processes', args.processes, 4),
  throughputSeconds: positive('throughput-seconds', args['throughput-seconds'], 10),
  overheadSamples: positive('overhead-samples', args['overhead-samples'], 2000),
  stormRequestsPerUser: 5,
  stormWindow: 0,
  signInConcurrency: 16,
  concurrencies: [1, 16, 64],
  coldStartRuns: 3,
  importRuns: 15,
  ioRequests: 1000,
  // Three SESSION_RECHECK_SECONDS windows of the default 5 s, so the count includes the reads
  // that end each window.
  ioSeconds: 15,
  memoryConcurrency: 16,
};
// 64 in flight per process, as the highest throughput level: every user's requests are in flight
// together, without queueing thousands of connections at the listeners (see docs/performance.md).
options.stormWindow = positive('storm-window', args['storm-window'], 64 * options.processes);

if (args['keep-logs']) keepAppLogs();

const runStarted = performance.now();
const loadAverageAtStart = os.loadavg().map((value) => round(value, 2));
/** The CPU index (stats.mts) at the start and at the end of the run. */
const cpuIndex: number[] = [];
function log(message: string): void {
  const seconds = ((performance.now() - runStarted) / 1000).toFixed(1).padStart(6);
  console.log(`[bench ${seconds}s] ${message}`);
}

// Stop everything on Ctrl-C, on a kill, and if the run overstays by far (a hung dependency).
let stopping = false;
async function stop(code: number, why: string): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.error(`\nbench: ${why}; stopping every process it started`);
    process.exitCode = code;
    await cleanUp();
  }
  process.exit(code);
}
process.once('SIGINT', () => void stop(130, 'interrupted'));
process.once('SIGTERM', () => void stop(143, 'terminated'));
process.on('exit', killChildrenNow);
process.on(
  'uncaughtException',
  (error) => void stop(2, `unexpected error: ${error.stack ?? error}`),
);
process.on('unhandledRejection', (error) => void stop(2, `unexpected error: ${String(error)}`));
const watchdog = setTimeout(() => void stop(3, 'the run took over 40 minutes'), 40 * 60_000);
watchdog.unref();

// ---------------------------------------------------------------------------------------------

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const git = (gitArgs: string[]) => {
    try {
      return execFileSync('git', gitArgs, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  };
  return {
    nproc: os.availableParallelism(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    /** 1, 5 and 15-minute load averages: above ~0.5 before the run, something else was running. */
    loadAverageAtStart,
    loadAverageAtEnd: os.loadavg().map((value) => round(value, 2)),
    /** ms for a fixed piece of CPU work at the start and the end: compare runs with it. */
    cpuIndexMs: cpuIndex,
    commit: git(['rev-parse', '--short', 'HEAD']),
    /** src/ differs from the commit: the figures are of the working tree, built by this run. */
    srcChanged: (git(['status', '--porcelain', '--', 'src']) ?? '') !== '',
  };
}

async function signInAll(
  client: HttpClient,
  apps: readonly AppInstance[],
  users: readonly { preferred_username: string; oid: string; name: string }[],
  label: string,
): Promise<SignedInUser[]> {
  const signedIn: SignedInUser[] = new Array<SignedInUser>(users.length);
  let done = 0;
  const started = performance.now();
  await forEachBounded(users, options.signInConcurrency, async (user, index) => {
    const app = apps[index % apps.length] as AppInstance;
    const session = await signIn(
      client,
      new CookieJar(),
      app.origin,
      user.preferred_username,
      SESSION_COOKIE,
    );
    signedIn[index] = { user, session };
    done += 1;
    if (done % 250 === 0 || done === users.length) {
      log(`sign-in (${label}): ${done}/${users.length}`);
    }
  });
  log(
    `sign-in (${label}): ${users.length} users in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return signedIn;
}

// ---------------------------------------------------------------------------------------------

interface Results {
  /** Wall time of each phase, and the cores each process (and other jobs) used meanwhile. */
  phases?: Partial<
    Record<
      Phase,
      {
        seconds: number;
        cores: Record<string, number>;
        /** Connections dropped because a listener's accept queue was full (loopback, whole machine). */
        listenOverflows: number;
        synRetransmits: number;
      }
    >
  >;
  /** RSS of each app process after each phase, MiB. */
  rssMiB?: Record<string, Record<string, number>>;
  overhead?: OverheadResult;
  io?: IoResult;
  throughput?: ThroughputLevel[];
  storm?: StormResult;
  coldStart?: ColdStartResult & { appProcessesReadyMs: number[] };
  memory?: MemoryResult;
}

async function main(results: Results): Promise<void> {
  if (!args['skip-build']) {
    log('build: npm run build');
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run build failed');
  }

  cpuIndex.push(round(await cpuIndexMs(), 1));
  const steadyUsers = benchUsers('user', 1, options.users);
  const stormUsers = phases.has('storm') ? benchUsers('storm', 2, options.stormUsers) : [];
  log(
    `stack: Azurite, the emulator (${steadyUsers.length + stormUsers.length} users), the API, ${options.processes} + 1 app processes`,
  );
  const stack = await startStack({
    users: [...steadyUsers, ...stormUsers],
    appPortCount: options.processes + 1,
  });
  const client = new HttpClient({ caCertPem: stack.emulator.caCertPem });
  const apps: AppInstance[] = [];
  for (const [index, port] of stack.appPorts.slice(0, options.processes).entries()) {
    apps.push(
      await spawnApp({
        name: `app-${index + 1}`,
        port,
        env: {
          ...stack.settingsFor(port, args['meter-all']),
          ...(index === 0 && args.profile !== undefined
            ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(args.profile)}` }
            : {}),
        },
        client,
      }),
    );
  }
  const meteredPort = stack.appPorts[options.processes] as number;
  const metered = phases.has('io')
    ? await spawnApp({
        name: 'app-metered',
        port: meteredPort,
        env: stack.settingsFor(meteredPort, true),
        client,
      })
    : undefined;
  const appProcessesReadyMs = [...apps, ...(metered ? [metered] : [])].map((app) => app.readyMs);
  log(`stack: app processes ready in ${appProcessesReadyMs.map(Math.round).join(', ')} ms`);

  // Each phase's wall time and the cores every process used meanwhile, other jobs included.
  const phase = async <T,>(name: Phase, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const before = cpuSeconds();
    const tcpBefore = tcpCounters();
    const result = await run();
    const seconds = (performance.now() - started) / 1000;
    const tcpAfter = tcpCounters();
    results.phases ??= {};
    results.phases[name] = {
      seconds: round(seconds, 1),
      cores: coresUsed(before, cpuSeconds(), seconds),
      listenOverflows: tcpAfter.listenOverflows - tcpBefore.listenOverflows,
      synRetransmits: tcpAfter.synRetransmits - tcpBefore.synRetransmits,
    };
    return result;
  };
  const rssAfter = (label: string) => {
    results.rssMiB ??= {};
    results.rssMiB[label] = Object.fromEntries(
      apps.map((app) => [app.name, round(app.rss() / 1024 ** 2, 1)]),
    );
  };
  const users = await signInAll(client, apps, steadyUsers, 'steady users');
  rssAfter('sign-in');
  const first = users[0] as SignedInUser;
  const settings = stack.settingsFor(apps[0]?.port ?? 0);
  const rows = openTokenRows(settings);

  // 1. Overhead.
  if (phases.has('overhead')) {
    const row = await rows.read(partitionKeyOf(first.user.oid, DEV_IDENTITIES.tenantId));
    const accessToken = row && accessTokenFor(row, settings.TODOLIST_READ ?? '');
    if (accessToken === undefined) throw new Error('no access token in the first user’s row');
    const floorEnv = { FLOOR_API_URL: stack.api.endpoint, FLOOR_ACCESS_TOKEN: accessToken };
    const [floorFunctionPort, floorProxyPort] = [await findFreePort(), await findFreePort()];
    const floorFunction = await spawnApp({
      name: 'floor-function',
      port: floorFunctionPort,
      env: {
        ...floorEnv,
        // Its profile beside the app's: what the app does per call that a trivial function does not.
        ...(args.profile === undefined
          ? {}
          : {
              NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(args.profile, 'floor-function')}`,
            }),
      },
      client,
      cwd: path.join(ROOT, 'bench', 'floor-function'),
      readyPath: '/api/todos',
    });
    const floorProxy = await spawnApp({
      name: 'floor-proxy',
      port: floorProxyPort,
      env: floorEnv,
      client,
      script: path.join(ROOT, 'bench', 'floor-proxy.mts'),
      readyPath: '/api/todos',
    });
    log(
      `overhead: ${options.overheadSamples} rounds (direct, app, floor function, floor proxy), sequential`,
    );
    results.overhead = await phase('overhead', () =>
      measureOverhead({
        app: apps[0] as AppInstance,
        floorFunction,
        floorProxy,
        user: first,
        apiEndpoint: stack.api.endpoint,
        accessToken,
        samples: options.overheadSamples,
        warmup: 1000,
        log,
      }),
    );
    await floorFunction.stop();
    await floorProxy.stop();
    rssAfter('overhead');
  }

  // 2. I/O per request.
  if (metered !== undefined) {
    log(`io: ${options.ioRequests} requests through the metered process`);
    results.io = await phase('io', () =>
      countIo({
        app: metered,
        users: users.slice(0, 10),
        meter: stack.meter,
        emulator: stack.emulator,
        api: stack.api,
        requests: options.ioRequests,
        minDurationMs: options.ioSeconds * 1000,
        warmup: 100,
      }),
    );
    await metered.stop();
  }

  // 5. Cold start, while the machine is otherwise idle.
  if (phases.has('cold-start')) {
    const coldStart = await phase('cold-start', () =>
      measureColdStart({
        settingsFor: (port) => stack.settingsFor(port),
        user: first,
        runs: options.coldStartRuns,
        importRuns: options.importRuns,
        log,
      }),
    );
    results.coldStart = { ...coldStart, appProcessesReadyMs };
  }

  // 3. Throughput.
  if (phases.has('throughput')) {
    results.throughput = await phase('throughput', () =>
      measureThroughput({
        apps,
        users,
        concurrencies: options.concurrencies,
        seconds: options.throughputSeconds,
        warmupRequests: 2000,
        log,
      }),
    );
    rssAfter('throughput');
  }

  // 4. Refresh storm: tokens issued for 2 minutes are inside MSAL's 5-minute refresh margin, so
  // every one of them needs a refresh at the first request; the refreshed ones live an hour.
  if (phases.has('storm')) {
    stack.emulator.setLifetimes({ accessTokenSeconds: 120 });
    const stormSignedIn = await signInAll(client, apps, stormUsers, 'storm users, 2-minute tokens');
    stack.emulator.setLifetimes({ accessTokenSeconds: 3600 });
    results.storm = await phase('storm', () =>
      refreshStorm({
        apps,
        users: stormSignedIn,
        requestsPerUser: options.stormRequestsPerUser,
        window: options.stormWindow,
        emulator: stack.emulator,
        rows,
        ...(args['meter-all'] ? { meter: stack.meter } : {}),
        log,
      }),
    );
    rssAfter('storm');
  }

  // 6. Memory, in a process of its own: nothing earlier (the storm above all) has sized its heap.
  if (phases.has('memory')) {
    const port = await findFreePort();
    const app = await spawnApp({
      name: 'app-memory',
      port,
      env: stack.settingsFor(port),
      client,
      inspect: true,
    });
    log(
      `memory: ${options.memoryRequests} requests over ${users.length} users on a new process, concurrency ${options.memoryConcurrency}`,
    );
    results.memory = await phase('memory', () =>
      measureMemory({
        app,
        users,
        requests: options.memoryRequests,
        concurrency: options.memoryConcurrency,
        log,
      }),
    );
    await app.stop();
  }
  client.close();
}

// ---------------------------------------------------------------------------------------------
// Report

function budgetResults(results: Results): BudgetResult[] {
  const { overhead, io, throughput, storm, coldStart, memory } = results;
  const phaseOf: Record<BudgetId, Phase> = {
    overheadMedianToFloorFunction: 'overhead',
    overheadMedianToFloorProxy: 'overhead',
    overheadP99ToFloorFunction: 'overhead',
    tableRoundTripsPerRequest: 'io',
    tableWritesPerRequest: 'io',
    idpCallsPerRequest: 'io',
    apiCallsPerRequest: 'io',
    throughputErrors: 'throughput',
    stormTokenCallsPerUserProcess: 'storm',
    storm5xx: 'storm',
    stormSignedOut: 'storm',
    stormUnreadableRows: 'storm',
    importToUnbundled: 'cold-start',
    memoryGrowthMiB: 'memory',
    memoryRssMiB: 'memory',
  };
  return [
    checkBudget('overheadMedianToFloorFunction', overhead?.ratios.medianToFloorFunction),
    checkBudget('overheadMedianToFloorProxy', overhead?.ratios.medianToFloorProxy),
    checkBudget('overheadP99ToFloorFunction', overhead?.ratios.p99ToFloorFunction),
    checkBudget('tableRoundTripsPerRequest', io?.perRequest.tableRoundTrips),
    checkBudget('tableWritesPerRequest', io?.perRequest.tableWrites),
    checkBudget('idpCallsPerRequest', io?.perRequest.idpCalls),
    checkBudget('apiCallsPerRequest', io?.perRequest.apiCalls),
    checkBudget(
      'throughputErrors',
      throughput?.reduce((sum, level) => sum + level.errors, 0),
    ),
    checkBudget('stormTokenCallsPerUserProcess', storm?.refreshGrantsPerUserProcess),
    checkBudget('storm5xx', storm === undefined ? undefined : storm.fiveXx + storm.failures),
    checkBudget('stormSignedOut', storm?.signedOutUsers),
    checkBudget('stormUnreadableRows', storm?.unreadableRows),
    checkBudget('importToUnbundled', coldStart?.imports.toUnbundled),
    checkBudget('memoryGrowthMiB', memory?.liveHeapGrowthAfterWarmMiB),
    checkBudget('memoryRssMiB', memory?.rssEndMiB),
  ].filter((budget) => phases.has(phaseOf[budget.id]));
}

function table(headers: string[], rowsOfCells: (string | number)[][]): string {
  const cells = [headers, ...rowsOfCells.map((cellsOfRow) => cellsOfRow.map(String))];
  const widths = headers.map((_, column) =>
    Math.max(...cells.map((cellsOfRow) => (cellsOfRow[column] ?? '').length)),
  );
  const line = (cellsOfRow: string[]) =>
    `| ${cellsOfRow.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`;
  return [
    line(cells[0] ?? []),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

/** Cores used by the app processes together, Azurite, the bench process, and anything else. */
function coreColumns(cores: Record<string, number>): string[] {
  let apps = 0;
  for (const [name, value] of Object.entries(cores)) if (name.startsWith('app-')) apps += value;
  return [apps, cores.azurite, cores[BENCH_PROCESS], cores[OTHERS]].map((value) =>
    (value ?? 0).toFixed(2),
  );
}

function coreSentence(cores: Record<string, number>): string {
  const [apps, azurite, bench, others] = coreColumns(cores);
  return `apps ${apps}, Azurite ${azurite}, bench (client, emulator, API) ${bench}, other jobs ${others}`;
}

const ratio = (value: number) => `${value.toFixed(2)}×`;
const ms = (value: number | undefined) => (value === undefined ? '–' : value.toFixed(2));
const mib = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(1)} MiB`);

// Azure Table Storage scalability targets (docs/performance.md cites the page): per storage account
// and per partition (one user's partition here).
const ACCOUNT_TRANSACTIONS_PER_SECOND = 20_000;
const PARTITION_ENTITIES_PER_SECOND = 2_000;

/** What one storage account and one partition carry at the measured rates. */
function scale(io: IoResult): string {
  const perSessionPerSecond = io.tableRoundTripsPerSessionMinute / 60;
  const callsPerSessionPerSecond = io.requests / io.users / io.seconds;
  return [
    `   scale at these rates: one storage account (${ACCOUNT_TRANSACTIONS_PER_SECOND} transactions/s) carries ${Math.round(ACCOUNT_TRANSACTIONS_PER_SECOND / perSessionPerSecond)} sessions calling steadily,`,
    `   or ${Math.round(ACCOUNT_TRANSACTIONS_PER_SECOND / io.perRequest.tableRoundTrips)} such calls a second (at ${round(callsPerSessionPerSecond, 1)} calls/s per session here);`,
    `   one user's partition (${PARTITION_ENTITIES_PER_SECOND} entities/s) is at ${round((100 * perSessionPerSecond) / PARTITION_ENTITIES_PER_SECOND, 4)} % of its target per session`,
  ].join('\n');
}

function report(results: Results, budgets: BudgetResult[]): string {
  const out: string[] = [];
  const { overhead, io, throughput, storm, coldStart, memory } = results;
  if (overhead) {
    out.push(
      `\n1. Proxy overhead: GET /api/todos, ${overhead.samples} sequential rounds after ${overhead.warmup} warm-up, each side in turn (ms)`,
      table(
        ['', 'median', 'p90', 'p99', 'max'],
        [
          ['straight to the API', overhead.directMs],
          ['through the app', overhead.proxiedMs],
          ['through the floor function', overhead.floorFunctionMs],
          ['through the floor proxy', overhead.floorProxyMs],
          ['app overhead (per round)', overhead.overheadMs],
          ['floor function overhead', overhead.floorFunctionOverheadMs],
          ['floor proxy overhead', overhead.floorProxyOverheadMs],
        ].map(([label, s]) => {
          const summary = s as OverheadResult['directMs'];
          return [
            label as string,
            ms(summary.median),
            ms(summary.p90),
            ms(summary.p99),
            ms(summary.max),
          ];
        }),
      ),
      `   ratios: app median ${ratio(overhead.ratios.medianToFloorFunction)} the floor function's, ${ratio(overhead.ratios.medianToFloorProxy)} the floor proxy's; app p99 ${ratio(overhead.ratios.p99ToFloorFunction)} the floor function's`,
      `   CPU per round (ms, /proc): app ${round(overhead.cpuMsPerRound.app, 3)}, floor function ${round(overhead.cpuMsPerRound.floorFunction, 3)}, floor proxy ${round(overhead.cpuMsPerRound.floorProxy, 3)}, bench (client and API of all four) ${round(overhead.cpuMsPerRound.bench, 3)}`,
    );
  }
  if (io) {
    const per = io.perRequest;
    out.push(
      `\n2. I/O per proxied request, steady state (${io.requests} requests over ${io.users} users in ${io.seconds.toFixed(1)} s, counted)`,
      table(
        ['Table round trips', 'point reads', 'queries', 'writes', 'IdP calls', 'API calls'],
        [
          [
            per.tableRoundTrips,
            per.tablePointReads,
            per.tableQueries,
            per.tableWrites,
            per.idpCalls,
            per.apiCalls,
          ].map((value) => round(value, 3)),
        ],
      ),
      `   Table round trip (Azurite, through the counting proxy): median ${ms(io.tableRoundTripMs.median)} ms, p99 ${ms(io.tableRoundTripMs.p99)} ms; the metered request end to end: median ${ms(io.requestMs.median)} ms`,
      `   per active session: ${round(io.tableRoundTripsPerSessionMinute, 1)} Table round trips a minute (one read per SESSION_RECHECK_SECONDS window while it calls)`,
      scale(io),
    );
  }
  if (throughput) {
    out.push(
      `\n3. Throughput: ${options.users} users over ${options.processes} processes, ${options.throughputSeconds} s per level`,
      table(
        [
          'concurrency',
          'requests',
          'req/s',
          'p50 ms',
          'p99 ms',
          'errors',
          'cores: apps',
          'Azurite',
          'bench',
          'other jobs',
        ],
        throughput.map((level) => [
          level.concurrency,
          level.requests,
          Math.round(level.requestsPerSecond),
          ms(level.latencyMs.median),
          ms(level.latencyMs.p99),
          level.errors,
          ...coreColumns(level.cores),
        ]),
      ),
    );
  }
  if (storm) {
    out.push(
      `\n4. Refresh storm: ${storm.users} users × ${storm.requestsPerUser} concurrent requests over ${storm.processes} processes (${storm.window} in flight)`,
      table(
        [
          'drain ms',
          'refresh grants',
          'per user',
          'per user·process',
          '5xx/failed',
          '401 users',
          'rows checked',
          'unreadable',
          'statuses',
        ],
        [
          [
            Math.round(storm.drainMs),
            storm.refreshGrants,
            round(storm.refreshGrantsPerUser, 2),
            round(storm.refreshGrantsPerUserProcess, 3),
            storm.fiveXx + storm.failures,
            storm.signedOutUsers,
            storm.rowsChecked,
            storm.unreadableRows,
            JSON.stringify(storm.byStatus),
          ],
        ],
      ),
      `   cores while draining: ${coreSentence(storm.cores)}; RSS after: ${JSON.stringify(storm.rssAfterMiB)} MiB`,
      ...(storm.table
        ? [
            `   Table Storage while draining: ${storm.table.roundTrips} round trips (${storm.table.queries} queries, ${storm.table.pointReads} point reads, ${storm.table.writes} writes), statuses ${JSON.stringify(storm.table.byStatus)}`,
          ]
        : []),
      `   after the storm, one request per user: ${JSON.stringify(storm.after.byStatus)}, ${storm.after.refreshGrants} refresh grants`,
      ...(storm.firstFailure === undefined
        ? []
        : [`   first request without an answer: ${storm.firstFailure}`]),
      ...storm.fiveXxAnswers.map((answer) => `   5xx: ${answer}`),
    );
  }
  if (coldStart) {
    const top = Object.entries(coldStart.breakdown.modules)
      .slice(0, 6)
      .map(([name, value]) => `${name} ${Math.round(value)}`)
      .join(', ');
    out.push(
      `\n5. Cold start (ms)`,
      table(
        [
          'spawn → /health 200',
          'first proxied call',
          'bare node -e 1',
          `import ${coldStart.imports.main}`,
          'above bare',
          'unbundled (dist/functions)',
          'above bare',
          'ratio',
        ],
        [
          [
            coldStart.readyMs.map(Math.round).join(', '),
            coldStart.firstProxiedMs.map(Math.round).join(', '),
            Math.round(coldStart.imports.bareNodeMedianMs),
            Math.round(coldStart.imports.importNodeMedianMs),
            Math.round(coldStart.imports.aboveBareNodeMs),
            Math.round(coldStart.imports.unbundledNodeMedianMs),
            Math.round(coldStart.imports.unbundledAboveBareNodeMs),
            ratio(coldStart.imports.toUnbundled),
          ],
        ],
      ),
      `   ratio from the fastest of ${coldStart.imports.runs} runs of each: main ${Math.round(Math.min(...coldStart.imports.importNodeMs))} ms, unbundled ${Math.round(Math.min(...coldStart.imports.unbundledNodeMs))} ms, bare ${Math.round(Math.min(...coldStart.imports.bareNodeMs))} ms (the median of the per-triple ratios: ${ratio(coldStart.imports.toUnbundledMedianOfTriples)})`,
      `   unbundled, import time by module (inclusive, first load, ms; ${Math.round(coldStart.breakdown.totalMs)} in all, app code ${Math.round(coldStart.breakdown.appCodeMs)}): ${top}`,
    );
  }
  if (memory) {
    out.push(
      `\n6. Memory: one process, ${memory.requests} requests over ${memory.users} users, concurrency ${memory.concurrency} (${memory.seconds.toFixed(0)} s, ${memory.errors} errors)`,
      table(
        [
          '',
          'start',
          `after ${memory.warmAtRequests}`,
          'end',
          'max',
          `growth ${memory.warmAtRequests} → end`,
          'slope once warm',
        ],
        [
          [
            'RSS',
            mib(memory.rssStartMiB),
            mib(memory.rssWarmMiB),
            mib(memory.rssEndMiB),
            mib(memory.rssMaxMiB),
            mib(memory.rssGrowthAfterWarmMiB),
            `${memory.rssBytesPerRequestAfterWarm.toFixed(1)} B/request`,
          ],
          [
            'live heap (after full GCs)',
            '',
            mib(memory.liveHeapWarmMiB),
            mib(memory.liveHeapEndMiB),
            mib(Math.max(...memory.liveHeapSamples.map((sample) => sample.liveBytes)) / 2 ** 20),
            mib(memory.liveHeapGrowthAfterWarmMiB),
            `${memory.liveHeapBytesPerRequestAfterWarm.toFixed(1)} B/request`,
          ],
        ],
      ),
    );
  }
  if (results.phases) {
    const entries = Object.entries(results.phases);
    out.push(
      '\nPhases: wall time, and cores used on average (2 in all on this machine)',
      table(
        [
          'phase',
          'seconds',
          'cores: apps',
          'Azurite',
          'bench',
          'other jobs',
          'listen overflows',
          'SYN retransmits',
        ],
        entries.map(([name, value]) => [
          name,
          value.seconds,
          ...coreColumns(value.cores),
          value.listenOverflows,
          value.synRetransmits,
        ]),
      ),
    );
    const disturbed = entries.filter(([, { cores }]) => (cores[OTHERS] ?? 0) > 0.2);
    if (disturbed.length > 0) {
      out.push(
        `   WARNING: other jobs used the cores during ${disturbed.map(([name]) => name).join(', ')}: those figures are disturbed.`,
      );
    }
  }
  out.push(
    '\nBudgets (bench/budgets.mts)',
    table(
      ['', 'budget', 'measured', ''],
      budgets.map((budget) => [
        budget.label,
        `${budget.rule} ${budget.limit}${budget.unit ? ` ${budget.unit}` : ''}`,
        budget.actual === undefined ? 'not measured' : String(round(budget.actual, 3)),
        budget.pass ? 'pass' : 'MISSED',
      ]),
    ),
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

const results: Results = {};
let failure: Error | undefined;
try {
  await main(results);
} catch (error) {
  failure = error instanceof Error ? error : new Error(String(error));
}
clearTimeout(watchdog);
if (!stopping) {
  cpuIndex.push(round(await cpuIndexMs(), 1));
  const budgets = budgetResults(results);
  const missed = budgets.filter((budget) => !budget.pass);
  const date = new Date().toISOString();
  const file = path.join(ROOT, 'bench', 'results', `${date.replace(/:/g, '-')}.json`);
  const info = machine();
  console.log(report(results, budgets));
  console.log(
    `\nMachine: ${info.nproc} × ${info.cpu}, ${info.memoryGiB} GiB, Node ${info.node}; load average at start ${info.loadAverageAtStart.join(' ')}; CPU index ${info.cpuIndexMs.join(' → ')} ms (a fixed workload: higher is a slower machine); commit ${info.commit ?? '?'}${info.srcChanged ? ' with uncommitted changes in src/' : ''}`,
  );
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        date,
        machine: info,
        options,
        budgets: BUDGETS,
        results,
        verdicts: budgets,
        error: failure?.message,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`Results written to ${path.relative(ROOT, file)}`);
  if (failure) {
    console.error(`\nbench: the run failed: ${failure.stack ?? failure.message}`);
    process.exitCode = 2;
  } else if (missed.length > 0) {
    console.error(`\nbench: ${missed.length} budget(s) missed:`);
    for (const budget of missed) {
      console.error(
        `  - ${budget.label}: ${budget.actual === undefined ? 'not measured' : round(budget.actual, 3)} (budget: ${budget.rule} ${budget.limit}${budget.unit ? ` ${budget.unit}` : ''})`,
      );
    }
    process.exitCode = 1;
  } else {
    console.log('\nbench: every budget met');
  }
  await cleanUp();
}
