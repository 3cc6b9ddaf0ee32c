// 5. Cold start: spawn → first answered request (/health 200) of a new app process, then its first
// proxied call; and the import time of what package.json `main` names (the bundle) against a bare
// `node -e 1` and against tsc's unbundled output, alternating in the same run, with a breakdown of
// what the unbundled imports spend time on.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { findFreePort } from '../../dev/ports.mts';
import { HttpClient } from '../http.mts';
import { getTodos, type SignedInUser } from '../load.mts';
import { ROOT, spawnApp } from '../stack.mts';
import { median } from '../stats.mts';

export interface ColdStartResult {
  readonly runs: number;
  /** Spawn → first 200 from /health, each run. */
  readonly readyMs: number[];
  /** The new process's first GET /api/todos (discovery metadata, first Table and API calls). */
  readonly firstProxiedMs: number[];
  readonly firstProxiedStatus: number[];
  readonly imports: {
    readonly runs: number;
    /** What `main` names, as the worker loads it. */
    readonly main: string;
    readonly bareNodeMs: number[];
    readonly importNodeMs: number[];
    /** tsc's output, `dist/functions/*.js`, as it would load without the bundle. */
    readonly unbundledNodeMs: number[];
    readonly bareNodeMedianMs: number;
    readonly importNodeMedianMs: number;
    readonly unbundledNodeMedianMs: number;
    /** median(imports of main) − median(bare). */
    readonly aboveBareNodeMs: number;
    /** median(unbundled) − median(bare). */
    readonly unbundledAboveBareNodeMs: number;
    /**
     * The budgeted figure: what main costs above bare Node, as a share of what tsc's modules cost,
     * from the fastest run of each kind. Importing is the same work every time, and whatever else
     * the machine does can only add to it (a run stalled for a core is slower, never faster), so
     * the fastest of 15 is the best estimate of that work; beside a test suite, single triples
     * ranged from 0.20 to 1.45 while the minima held (docs/performance.md).
     */
    readonly toUnbundled: number;
    /** Each triple's ratio (bare, main, unbundled, one after the other), and their median. */
    readonly toUnbundledPerRun: number[];
    readonly toUnbundledMedianOfTriples: number;
  };
  /** Unbundled: inclusive load time of each module the app's own files require, first load, ms. */
  readonly breakdown: {
    readonly totalMs: number;
    readonly appCodeMs: number;
    readonly modules: Record<string, number>;
  };
}

/** Requires the files a glob names, in the worker's (sorted) order. */
function requireGlob(glob: string): string {
  return `{
  const fs = require('node:fs'), path = require('node:path');
  for (const file of fs.globSync(${JSON.stringify(glob)}).sort()) require(path.resolve(file));
}`;
}

const MAIN = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string })
  .main;
const REQUIRE_MAIN = requireGlob(MAIN);
// tsc's output for the function files src/functions holds (as scripts/bundle.mts bundles them):
// tsc never deletes output, so a function file removed from src/ may still lie in dist/functions.
const REQUIRE_UNBUNDLED = `{
  const path = require('node:path');
  for (const file of ${JSON.stringify(
    readdirSync(path.join(ROOT, 'src', 'functions'))
      .filter((file) => file.endsWith('.ts'))
      .map((file) => `dist/functions/${file.replace(/\.ts$/, '.js')}`)
      .sort(),
  )}) require(path.resolve(file));
}`;

const BREAKDOWN = `
const Module = require('node:module'), path = require('node:path');
const dist = path.resolve('dist') + path.sep;
const load = Module._load;
const modules = {};
Module._load = function (request, parent) {
  const fromApp = parent && typeof parent.filename === 'string' && parent.filename.startsWith(dist);
  if (!fromApp || request.startsWith('.')) return load.apply(this, arguments);
  const started = process.hrtime.bigint();
  try {
    return load.apply(this, arguments);
  } finally {
    const name = request.startsWith('node:') ? 'node: built-ins' : request;
    modules[name] = (modules[name] || 0) + Number(process.hrtime.bigint() - started) / 1e6;
  }
};
const started = process.hrtime.bigint();
${REQUIRE_UNBUNDLED}
const totalMs = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(JSON.stringify({ totalMs, modules }));`;

function timeNode(args: string[], env: NodeJS.ProcessEnv): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: ROOT, env, stdio: 'ignore' });
  const elapsed = performance.now() - started;
  if (result.status !== 0) throw new Error(`node ${args.join(' ').slice(0, 60)}… failed`);
  return elapsed;
}

export async function measureColdStart(options: {
  settingsFor: (port: number) => Record<string, string>;
  user: SignedInUser;
  runs: number;
  importRuns: number;
  log: (message: string) => void;
}): Promise<ColdStartResult> {
  const readyMs: number[] = [];
  const firstProxiedMs: number[] = [];
  const firstProxiedStatus: number[] = [];
  for (let run = 0; run < options.runs; run += 1) {
    const client = new HttpClient();
    const port = await findFreePort();
    const app = await spawnApp({
      name: `cold-start-${run + 1}`,
      port,
      env: options.settingsFor(port),
      client,
    });
    try {
      readyMs.push(app.readyMs);
      const started = performance.now();
      const answer = await getTodos(client, app, options.user);
      firstProxiedMs.push(performance.now() - started);
      firstProxiedStatus.push(answer.status);
      options.log(
        `cold start ${run + 1}/${options.runs}: ready in ${Math.round(app.readyMs)} ms, first proxied call ${Math.round(performance.now() - started)} ms`,
      );
    } finally {
      await app.stop();
      client.close();
    }
  }

  const env = { ...process.env, ...options.settingsFor(7071) };
  const bareNodeMs: number[] = [];
  const importNodeMs: number[] = [];
  const unbundledNodeMs: number[] = [];
  // Once each to fill the OS's file cache, then in turn.
  for (const code of ['1', REQUIRE_MAIN, REQUIRE_UNBUNDLED]) timeNode(['-e', code], env);
  for (let run = 0; run < options.importRuns; run += 1) {
    bareNodeMs.push(timeNode(['-e', '1'], env));
    importNodeMs.push(timeNode(['-e', REQUIRE_MAIN], env));
    unbundledNodeMs.push(timeNode(['-e', REQUIRE_UNBUNDLED], env));
  }
  const toUnbundledPerRun = bareNodeMs.map(
    (bare, run) => ((importNodeMs[run] ?? 0) - bare) / ((unbundledNodeMs[run] ?? 0) - bare),
  );
  const bareNodeMedianMs = median(bareNodeMs);
  const importNodeMedianMs = median(importNodeMs);
  const unbundledNodeMedianMs = median(unbundledNodeMs);
  options.log(
    `imports: ${MAIN} ${Math.round(importNodeMedianMs)} ms, unbundled ${Math.round(unbundledNodeMedianMs)} ms, bare node ${Math.round(bareNodeMedianMs)} ms (median of ${options.importRuns})`,
  );

  const probe = spawnSync(process.execPath, ['-e', BREAKDOWN], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  });
  if (probe.status !== 0) throw new Error(`the import breakdown failed:\n${probe.stderr}`);
  const breakdown = JSON.parse(probe.stdout) as {
    totalMs: number;
    modules: Record<string, number>;
  };
  const modules = Object.fromEntries(
    Object.entries(breakdown.modules).sort(([, a], [, b]) => b - a),
  );
  const moduleMs = Object.values(modules).reduce((sum, ms) => sum + ms, 0);
  return {
    runs: options.runs,
    readyMs,
    firstProxiedMs,
    firstProxiedStatus,
    imports: {
      runs: options.importRuns,
      main: MAIN,
      bareNodeMs,
      importNodeMs,
      unbundledNodeMs,
      bareNodeMedianMs,
      importNodeMedianMs,
      unbundledNodeMedianMs,
      aboveBareNodeMs: importNodeMedianMs - bareNodeMedianMs,
      unbundledAboveBareNodeMs: unbundledNodeMedianMs - bareNodeMedianMs,
      toUnbundled:
        (Math.min(...importNodeMs) - Math.min(...bareNodeMs)) /
        (Math.min(...unbundledNodeMs) - Math.min(...bareNodeMs)),
      toUnbundledPerRun,
      toUnbundledMedianOfTriples: median(toUnbundledPerRun),
    },
    breakdown: { totalMs: breakdown.totalMs, appCodeMs: breakdown.totalMs - moduleMs, modules },
  };
}
