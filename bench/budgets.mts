// Every budget of `npm run bench`, in one place. A run fails (exit code 1) when any is missed, and
// says which. Change a budget here and in docs/performance.md together.
//
// Timed figures are budgeted as ratios to baselines measured in the same run, interleaved with the
// app, so that they hold whatever else the machine does; the absolute figures are reported, not
// judged. Counted figures do not depend on the machine and keep absolute budgets.

export interface Budget {
  /** What is measured, as the report prints it. */
  readonly label: string;
  /** The limit, in `unit`. */
  readonly limit: number;
  readonly unit: string;
  /** How an actual value compares with the limit. */
  readonly rule: 'at most' | 'exactly';
}

export const BUDGETS = {
  // 1. Proxy overhead: GET /api/todos through the app minus the same call straight to the API,
  // against the same for the floor function (a trivial function on the same local host forwarding
  // with a fixed token) and the floor proxy (plain node:http forwarding with a fixed token).
  overheadMedianToFloorFunction: {
    label: 'overhead median ÷ floor function’s',
    limit: 1.5,
    unit: '×',
    rule: 'at most',
  },
  overheadMedianToFloorProxy: {
    label: 'overhead median ÷ floor proxy’s',
    limit: 3,
    unit: '×',
    rule: 'at most',
  },
  overheadP99ToFloorFunction: {
    label: 'overhead p99 ÷ floor function’s',
    limit: 3,
    unit: '×',
    rule: 'at most',
  },

  // 2. I/O per proxied request in steady state, counted: sessions and tokens come from memory
  // between reads (SESSION_RECHECK_SECONDS), so a steady caller reads the table once a window.
  tableRoundTripsPerRequest: {
    label: 'Table round trips per steady call',
    limit: 0.05,
    unit: '',
    rule: 'at most',
  },
  tableWritesPerRequest: { label: 'Table writes per request', limit: 0, unit: '', rule: 'at most' },
  idpCallsPerRequest: { label: 'IdP calls per request', limit: 0, unit: '', rule: 'at most' },
  apiCallsPerRequest: { label: 'API calls per request', limit: 1, unit: '', rule: 'exactly' },

  // 3. Throughput at concurrency 1, 16 and 64 over 4 processes.
  throughputErrors: { label: 'throughput errors', limit: 0, unit: '', rule: 'at most' },

  // 4. Refresh storm.
  stormTokenCallsPerUserProcess: {
    label: 'storm refresh grants per user per process',
    limit: 1,
    unit: '',
    rule: 'at most',
  },
  storm5xx: { label: 'storm 5xx answers', limit: 0, unit: '', rule: 'at most' },
  stormSignedOut: { label: 'storm users signed out', limit: 0, unit: '', rule: 'at most' },
  stormUnreadableRows: { label: 'rows that do not decrypt', limit: 0, unit: '', rule: 'at most' },

  // 5. Cold start: importing what package.json `main` names (the bundle) above a bare `node -e 1`,
  // against importing tsc's unbundled modules above it, alternating in the same run.
  importToUnbundled: {
    label: 'imports of main ÷ unbundled modules’',
    limit: 0.6,
    unit: '×',
    rule: 'at most',
  },

  // 6. Memory of one new app process over a long run spread over many users. No growth per request
  // once warm: from 20,000 requests on (20 % of the full run), what the process still holds after a
  // full collection (its live heap) may move by the noise of what is in flight only; a leak of 200
  // bytes a request would show as 16 MiB over 80,000 requests. (RSS is no measure of that: V8 lets
  // its heap grow between collections as far as its own heuristics say, later in one run than in
  // another.) Bounded: per user the app keeps at most the L1's access tokens (at most 16 MiB in
  // all, about 2 MiB for 1,000 users); 384 MiB of RSS is under a fifth of the 2,048 MB instance
  // infra/app.bicep deploys (Flex Consumption), which leaves the Functions host and a burst such as
  // the refresh storm their room.
  memoryGrowthMiB: {
    label: 'live heap growth once warm (20,000 requests → end)',
    limit: 16,
    unit: 'MiB',
    rule: 'at most',
  },
  memoryRssMiB: { label: 'RSS at the end', limit: 384, unit: 'MiB', rule: 'at most' },
} as const satisfies Record<string, Budget>;

export type BudgetId = keyof typeof BUDGETS;

export interface BudgetResult {
  readonly id: BudgetId;
  readonly label: string;
  readonly limit: number;
  readonly unit: string;
  readonly rule: Budget['rule'];
  /** Undefined when the phase did not run or could not measure it: a miss. */
  readonly actual: number | undefined;
  readonly pass: boolean;
}

export function checkBudget(id: BudgetId, actual: number | undefined): BudgetResult {
  const budget: Budget = BUDGETS[id];
  const pass =
    actual !== undefined &&
    Number.isFinite(actual) &&
    (budget.rule === 'exactly' ? actual === budget.limit : actual <= budget.limit);
  return { id, ...budget, actual, pass };
}
