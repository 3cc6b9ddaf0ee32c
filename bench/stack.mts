// The offline stack for the bench: Azurite in memory, the Entra emulator and the sample API in this
// process, a counting proxy in front of Azurite, and app processes of the built app on the local
// host. Everything started is registered for clean-up, which runs on exit, error and Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startAzurite, tableConnectionString, type Azurite } from '../dev/azurite.mts';
import { appSettings, DEV_IDENTITIES } from '../dev/dev-settings.mts';
import {
  startEntraEmulator,
  type EntraEmulator,
  type TestUser,
} from '../dev/entra-emulator/emulator.mts';
import { findFreePort } from '../dev/ports.mts';
import { startTodoListApi, type TodoListApi } from '../dev/todolist-api/todolist-api.mts';
import type { HttpClient } from './http.mts';
import { startTableMeter, type TableMeter } from './table-meter.mts';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const SESSION_COOKIE = '__Host-bff-session';

// ---------------------------------------------------------------------------------------------
// Clean-up

const cleanups: (() => Promise<void> | void)[] = [];
const children = new Set<ChildProcess>();
/** The name of every app process by pid, for the CPU accounting. */
const appNames = new Map<number, string>();

/** Registers a stop function; they run in reverse order. */
export function onCleanup(stop: () => Promise<void> | void): void {
  cleanups.push(stop);
}

export async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    const stop = cleanups.pop();
    try {
      await Promise.race([stop?.(), delay(10_000)]);
    } catch {
      // Keep stopping the rest.
    }
  }
  killChildrenNow();
}

/**
 * Last resort, synchronous: kills every child still running (e.g. on process exit), the app
 * processes and any other process this one started (Azurite), by their pids.
 */
export function killChildrenNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const pid of childPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

// ---------------------------------------------------------------------------------------------
// App processes

export interface AppInstance {
  readonly name: string;
  readonly port: number;
  /** http://localhost:PORT, the origin its REDIRECT_URI names. */
  readonly origin: string;
  readonly pid: number;
  /** Milliseconds from spawn to the first 200 from /health. */
  readonly readyMs: number;
  /** Resident set size from /proc/<pid>/status, in bytes. */
  rss(): number;
  /** The DevTools WebSocket of a process started with `inspect` (loopback, random port). */
  readonly inspectorUrl: string | undefined;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

let logDir: string | undefined;
let keepLogs = false;

/** Keeps the app processes' logs after the run (their folder is printed at the end). */
export function keepAppLogs(): void {
  keepLogs = true;
}

function logDirectory(): string {
  if (logDir === undefined) {
    const dir = mkdtempSync(path.join(tmpdir(), 'bench-logs-'));
    logDir = dir;
    onCleanup(() => {
      // Kept when asked, or when the run missed a budget or failed: the logs are the evidence of
      // why (a storm 5xx's cause is in its process's log, at the time the bench prints).
      const code = Number(process.exitCode ?? 0);
      if (code === 0 && !keepLogs) rmSync(dir, { recursive: true, force: true });
      else console.error(`app logs kept in ${dir}`);
    });
  }
  return logDir;
}

export function readRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/**
 * Spawns the built app on the local host (as `npm run start:local` does) with its output in a log
 * file, and resolves once /health answers 200. Times spawn → first answered request. The floors
 * of the overhead phase start the same way: another function app on the local host (`cwd`), or
 * another script.
 */
export async function spawnApp(options: {
  name: string;
  port: number;
  env: Readonly<Record<string, string>>;
  client: HttpClient;
  timeoutMs?: number;
  /** Start with the inspector on a random loopback port, e.g. to read the live heap. */
  inspect?: boolean;
  /** The function app the local host serves (its folder); default: this app. */
  cwd?: string;
  /** What to run instead of the local host. */
  script?: string;
  /** The path that answers 200 once it is ready; default /health. */
  readyPath?: string;
}): Promise<AppInstance> {
  const logFile = path.join(logDirectory(), `${options.name}.log`);
  const fd = openSync(logFile, 'a');
  const started = performance.now();
  const nodeArgs = options.inspect ? ['--inspect=127.0.0.1:0'] : [];
  const script = options.script ?? path.join(ROOT, 'dev/local-host/cli.mts');
  const child = spawn(process.execPath, [...nodeArgs, script], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env, PORT: String(options.port), HOST: '127.0.0.1' },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  children.add(child);
  if (child.pid !== undefined) appNames.set(child.pid, options.name);
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    children.delete(child);
  };
  onCleanup(stop);
  const logTail = (lines = 20) => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };

  const deadline = started + (options.timeoutMs ?? 30_000);
  const health = `http://127.0.0.1:${options.port}${options.readyPath ?? '/health'}`;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`app ${options.name} exited with ${child.exitCode}:\n${logTail()}`);
    }
    try {
      const answer = await options.client.request(health, {
        headers: { host: `localhost:${options.port}` },
        timeoutMs: 5_000,
      });
      if (answer.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`app ${options.name} did not answer /health in time:\n${logTail()}`);
    }
    await delay(5);
  }
  const readyMs = performance.now() - started;
  const inspectorUrl = options.inspect
    ? /Debugger listening on (ws:\/\/\S+)/.exec(readFileSync(logFile, 'utf8'))?.[1]
    : undefined;
  if (options.inspect && inspectorUrl === undefined) {
    await stop();
    throw new Error(`app ${options.name} printed no inspector URL:\n${logTail()}`);
  }
  return {
    name: options.name,
    port: options.port,
    origin: `http://localhost:${options.port}`,
    pid: child.pid ?? 0,
    readyMs,
    rss: () => readRss(child.pid ?? 0),
    inspectorUrl,
    logTail,
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// The stack

export interface Stack {
  readonly azurite: Azurite;
  readonly emulator: EntraEmulator;
  readonly api: TodoListApi;
  readonly meter: TableMeter;
  /** Settings shared by every app process (REDIRECT_URI and the table endpoint differ). */
  readonly sessionKeys: string;
  readonly tokenCacheKeys: string;
  readonly tokenCacheTable: string;
  /** Ports reserved for app processes, the redirect URIs the emulator accepts. */
  readonly appPorts: readonly number[];
  /** The app settings for the app process on `port`, with Table Storage direct or metered. */
  settingsFor(port: number, metered?: boolean): Record<string, string>;
}

export async function startStack(options: {
  users: readonly TestUser[];
  appPortCount: number;
}): Promise<Stack> {
  const azurite = await startAzurite();
  onCleanup(() => azurite.stop());
  const meter = await startTableMeter(azurite.tableEndpoint);
  onCleanup(() => meter.close());

  const appPorts: number[] = [];
  while (appPorts.length < options.appPortCount) {
    const port = await findFreePort();
    if (!appPorts.includes(port)) appPorts.push(port);
  }
  const clientSecret = randomBytes(24).toString('base64url');
  const emulator = await startEntraEmulator({
    tenantId: DEV_IDENTITIES.tenantId,
    clients: [
      {
        clientId: DEV_IDENTITIES.webAppClientId,
        clientSecret,
        // A post-logout redirect URI is a registered redirect URI, as in Entra.
        redirectUris: appPorts.flatMap((port) => [
          `http://localhost:${port}/auth/redirect`,
          `http://localhost:${port}/`,
        ]),
      },
    ],
    api: { clientId: DEV_IDENTITIES.apiClientId },
    users: [...options.users],
  });
  onCleanup(() => emulator.close());

  const api = await startTodoListApi({
    issuer: emulator.issuer,
    jwksUri: emulator.jwksUri,
    audience: DEV_IDENTITIES.apiClientId,
    caCertPem: emulator.caCertPem,
  });
  onCleanup(() => api.close());

  const sessionKeys = randomBytes(32).toString('base64');
  const tokenCacheKeys = randomBytes(32).toString('base64');
  const tokenCacheTable = 'tokencache';
  return {
    azurite,
    emulator,
    api,
    meter,
    sessionKeys,
    tokenCacheKeys,
    tokenCacheTable,
    appPorts,
    settingsFor: (port, metered = false) => ({
      ...appSettings({
        appOrigin: `http://localhost:${port}`,
        authority: emulator.authority,
        clientSecret,
        todoListEndpoint: api.endpoint,
        tokenCacheStorage: metered
          ? tableConnectionString(meter.tableEndpoint)
          : azurite.connectionString,
        sessionKeys,
        tokenCacheKeys,
        tokenCacheTable,
      }),
      NODE_EXTRA_CA_CERTS: emulator.caCertPath,
    }),
  };
}

/** `count` emulator users with distinct oids and user names, `prefix` naming the group. */
export function benchUsers(prefix: string, group: number, count: number): TestUser[] {
  return Array.from({ length: count }, (_, index) => ({
    oid: `be4c0000-0000-4000-8${String(group).padStart(3, '0')}-${String(index).padStart(12, '0')}`,
    name: `${prefix} ${index}`,
    preferred_username: `${prefix}${index}@bench.example`,
  }));
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

const CLOCK_TICKS_PER_SECOND = 100;
export const BENCH_PROCESS = 'bench (client, emulator, API)';
export const MACHINE_BUSY = '(machine: busy)';
export const MACHINE_STEAL = '(machine: steal)';
export const MACHINE_IDLE = '(machine: idle)';
export const OTHERS = '(others)';
export const EXITED_CHILDREN = 'exited children (cold starts, node -e)';

/** User and system CPU seconds of a process, and of its children it has waited for. */
export function cpuSecondsOf(pid: number | 'self'): { own: number; exitedChildren: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) in parentheses: utime, stime, cutime
  // and cstime are the 14th to 17th fields of the line.
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return {
    own: ((fields[11] ?? 0) + (fields[12] ?? 0)) / CLOCK_TICKS_PER_SECOND,
    exitedChildren: ((fields[13] ?? 0) + (fields[14] ?? 0)) / CLOCK_TICKS_PER_SECOND,
  };
}

function childPids(): number[] {
  const pids: number[] = [];
  for (const task of readdirSync('/proc/self/task')) {
    try {
      const children = readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim();
      if (children !== '') pids.push(...children.split(' ').map(Number));
    } catch {
      // The thread ended.
    }
  }
  return pids;
}

/**
 * CPU seconds used so far by this process (the load generator, the emulator and the API) and by
 * each child: Azurite, the app processes (by the name their log file has).
 */
export function cpuSeconds(): Record<string, number> {
  // The whole machine, to tell when something outside the bench competed for the cores: busy is
  // every state but idle and iowait; steal is time the hypervisor gave to other guests.
  const [, ...ticks] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = ticks.map(Number);
  const self = cpuSecondsOf('self');
  const seconds: Record<string, number> = {
    [MACHINE_BUSY]:
      ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)) /
      CLOCK_TICKS_PER_SECOND,
    [MACHINE_STEAL]: (steal ?? 0) / CLOCK_TICKS_PER_SECOND,
    [MACHINE_IDLE]: ((idle ?? 0) + (iowait ?? 0)) / CLOCK_TICKS_PER_SECOND,
    [BENCH_PROCESS]: self.own,
    // Processes the bench started and that ended (cold starts, `node -e` runs): still ours.
    [EXITED_CHILDREN]: self.exitedChildren,
  };
  for (const pid of childPids()) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const name = appNames.get(pid) ?? (command.includes('azurite') ? 'azurite' : `pid ${pid}`);
      seconds[name] = (seconds[name] ?? 0) + cpuSecondsOf(pid).own;
    } catch {
      // The process ended.
    }
  }
  return seconds;
}

/**
 * Cores used by each process between two readings of `cpuSeconds`, over `elapsedSeconds`, and by
 * everything else on the machine (`(others)`: another job competing for the cores).
 */
export function coresUsed(
  before: Record<string, number>,
  after: Record<string, number>,
  elapsedSeconds: number,
): Record<string, number> {
  const cores: Record<string, number> = {};
  for (const [name, value] of Object.entries(after)) {
    cores[name] = (value - (before[name] ?? 0)) / elapsedSeconds;
  }
  let ours = 0;
  for (const [name, value] of Object.entries(cores)) if (!name.startsWith('(')) ours += value;
  cores[OTHERS] = Math.max(0, (cores[MACHINE_BUSY] ?? 0) - ours);
  return Object.fromEntries(
    Object.entries(cores).map(([name, value]) => [name, Math.round(value * 100) / 100]),
  );
}

/**
 * The kernel's TCP counters that show connections queuing up: a listener's accept queue overflowing
 * (the SYN is dropped) and SYNs sent again (the client then waits 1, 3, 7, 15 s... to connect).
 */
export function tcpCounters(): { listenOverflows: number; synRetransmits: number } {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const header = lines.findIndex((line) => line.startsWith('TcpExt:'));
  const names = (lines[header] ?? '').split(' ');
  const values = (lines[header + 1] ?? '').split(' ').map(Number);
  const value = (name: string) => values[names.indexOf(name)] ?? 0;
  return { listenOverflows: value('ListenOverflows'), synRetransmits: value('TCPSynRetrans') };
}
