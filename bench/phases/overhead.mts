// 1. Proxy overhead: GET /api/todos through an app process, through the floor function (a trivial
// function on the same local host that forwards with a fixed token) and through the floor proxy (a
// plain node:http proxy with a fixed token), each against the same call straight to the sample API
// with the same user's valid access token. Sequential, four requests a round, the order rotating
// every round, so that drift (GC, the other core's load, other jobs) falls on every side alike and
// the ratios hold whatever else the machine does.
import { HttpClient, type Answer } from '../http.mts';
import { getTodos, pageHeaders, type SignedInUser } from '../load.mts';
import { cpuSecondsOf, type AppInstance } from '../stack.mts';
import { summarize, type Summary } from '../stats.mts';

export interface OverheadResult {
  readonly samples: number;
  readonly warmup: number;
  readonly directMs: Summary;
  readonly proxiedMs: Summary;
  /** proxied − direct of each round. */
  readonly overheadMs: Summary;
  readonly floorFunctionMs: Summary;
  /** floor function − direct of each round. */
  readonly floorFunctionOverheadMs: Summary;
  readonly floorProxyMs: Summary;
  /** floor proxy − direct of each round. */
  readonly floorProxyOverheadMs: Summary;
  /** The budgeted ratios of the app's overhead to the floors' (medians; p99s). */
  readonly ratios: {
    readonly medianToFloorFunction: number;
    readonly medianToFloorProxy: number;
    readonly p99ToFloorFunction: number;
  };
  /**
   * CPU milliseconds each process spent per measured round, from /proc (10-ms ticks over the
   * whole phase): the work behind each side's overhead, which does not depend on what else the
   * machine runs. The bench process is the client and the API of every side.
   */
  readonly cpuMsPerRound: Record<'app' | 'floorFunction' | 'floorProxy' | 'bench', number>;
  /** Answers other than 200 on any side (the samples are still timed). */
  readonly errors: number;
  /** Every measured round's times (ms, 3 decimals), for a look at the run afterwards (JSON only). */
  readonly roundsMs: Record<Side, number[]>;
}

export type Side = 'direct' | 'app' | 'floorFunction' | 'floorProxy';
const SIDES: readonly Side[] = ['direct', 'app', 'floorFunction', 'floorProxy'];

export async function measureOverhead(options: {
  app: AppInstance;
  floorFunction: AppInstance;
  floorProxy: AppInstance;
  user: SignedInUser;
  apiEndpoint: string;
  accessToken: string;
  samples: number;
  warmup: number;
  log: (message: string) => void;
}): Promise<OverheadResult> {
  // One connection to each, kept alive: a browser's steady state against the app, and each
  // proxy's own keep-alive connection to the API.
  const client = new HttpClient({ maxSockets: 1 });
  // The floors get the very request the app gets (its cookie, CSRF and origin headers), so the
  // host reads and converts the same bytes on every side; they just do nothing with them.
  const floor = (instance: AppInstance) => (): Promise<Answer> =>
    client.request(`http://127.0.0.1:${instance.port}/api/todos`, {
      headers: pageHeaders(instance, options.user),
    });
  const send: Record<Side, () => Promise<Answer>> = {
    direct: () =>
      client.request(options.apiEndpoint, {
        headers: { authorization: `Bearer ${options.accessToken}`, accept: 'application/json' },
      }),
    app: () => getTodos(client, options.app, options.user),
    floorFunction: floor(options.floorFunction),
    floorProxy: floor(options.floorProxy),
  };
  const time = async (side: Side) => {
    const started = performance.now();
    const answer = await send[side]();
    return { ms: performance.now() - started, ok: answer.status === 200 };
  };

  const ms: Record<Side, number[]> = { direct: [], app: [], floorFunction: [], floorProxy: [] };
  const overhead: Record<Exclude<Side, 'direct'>, number[]> = {
    app: [],
    floorFunction: [],
    floorProxy: [],
  };
  let errors = 0;
  const cpu = () => ({
    app: cpuSecondsOf(options.app.pid).own,
    floorFunction: cpuSecondsOf(options.floorFunction.pid).own,
    floorProxy: cpuSecondsOf(options.floorProxy.pid).own,
    bench: cpuSecondsOf('self').own,
  });
  let cpuBefore = cpu();
  let cpuAfter = cpuBefore;
  try {
    for (let index = 0; index < options.warmup + options.samples; index += 1) {
      if (index === options.warmup) cpuBefore = cpu();
      const round: Partial<Record<Side, number>> = {};
      let ok = true;
      for (let turn = 0; turn < SIDES.length; turn += 1) {
        const side = SIDES[(index + turn) % SIDES.length] as Side;
        const timed = await time(side);
        round[side] = timed.ms;
        ok &&= timed.ok;
      }
      if (index < options.warmup) continue;
      if (!ok) errors += 1;
      const direct = round.direct ?? 0;
      for (const side of SIDES) ms[side].push(round[side] ?? 0);
      for (const side of ['app', 'floorFunction', 'floorProxy'] as const) {
        overhead[side].push((round[side] ?? 0) - direct);
      }
      const done = index - options.warmup + 1;
      if (done % 500 === 0) options.log(`overhead: ${done}/${options.samples} rounds`);
    }
    cpuAfter = cpu();
  } finally {
    client.close();
  }
  const cpuMsPerRound = (side: keyof typeof cpuBefore) =>
    ((cpuAfter[side] - cpuBefore[side]) * 1000) / options.samples;
  const overheadMs = summarize(overhead.app);
  const floorFunctionOverheadMs = summarize(overhead.floorFunction);
  const floorProxyOverheadMs = summarize(overhead.floorProxy);
  return {
    samples: options.samples,
    warmup: options.warmup,
    directMs: summarize(ms.direct),
    proxiedMs: summarize(ms.app),
    overheadMs,
    floorFunctionMs: summarize(ms.floorFunction),
    floorFunctionOverheadMs,
    floorProxyMs: summarize(ms.floorProxy),
    floorProxyOverheadMs,
    ratios: {
      medianToFloorFunction: overheadMs.median / floorFunctionOverheadMs.median,
      medianToFloorProxy: overheadMs.median / floorProxyOverheadMs.median,
      p99ToFloorFunction: overheadMs.p99 / floorFunctionOverheadMs.p99,
    },
    cpuMsPerRound: {
      app: cpuMsPerRound('app'),
      floorFunction: cpuMsPerRound('floorFunction'),
      floorProxy: cpuMsPerRound('floorProxy'),
      bench: cpuMsPerRound('bench'),
    },
    errors,
    roundsMs: {
      direct: ms.direct.map((value) => Math.round(value * 1000) / 1000),
      app: ms.app.map((value) => Math.round(value * 1000) / 1000),
      floorFunction: ms.floorFunction.map((value) => Math.round(value * 1000) / 1000),
      floorProxy: ms.floorProxy.map((value) => Math.round(value * 1000) / 1000),
    },
  };
}
