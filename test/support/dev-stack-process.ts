import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { findFreePort, isPortFree } from '../../dev/ports.mts';

const root = path.resolve(import.meta.dirname, '../..');

export interface DevStackPorts {
  readonly app: number;
  readonly emulator: number;
  readonly api: number;
  readonly notesApi: number;
  readonly azurite: readonly [number, number, number];
}

export interface RunningDevStack {
  readonly appOrigin: string;
  readonly ports: DevStackPorts;
  /** The `npm run dev` process this test started. */
  readonly npm: ChildProcess;
  /** Everything it wrote so far. */
  output(): string;
  /** Resolves once npm has exited. */
  readonly exited: Promise<void>;
}

export async function freeDevStackPorts(): Promise<DevStackPorts> {
  const ports: number[] = [];
  // Distinct even if the OS offers a port again after it was released.
  while (ports.length < 7) {
    const port = await findFreePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const [app = 0, emulator = 0, api = 0, notesApi = 0, blob = 0, queue = 0, table = 0] = ports;
  return { app, emulator, api, notesApi, azurite: [blob, queue, table] };
}

/**
 * Lets the dev stack's emulator issue its server certificate from the CA the test workers trust
 * (the global setup's emulator, trusted through NODE_EXTRA_CA_CERTS): the dev stack keeps and
 * reuses a CA found in its state's certs/ folder, as it does for a developer's browser.
 */
export function shareTestCa(stateDir: string, testCaCertPath: string): void {
  const certs = path.join(stateDir, 'certs');
  mkdirSync(certs, { recursive: true });
  const from = path.dirname(testCaCertPath);
  copyFileSync(path.join(from, 'ca.pem'), path.join(certs, 'ca.pem'));
  copyFileSync(path.join(from, 'ca-key.pem'), path.join(certs, 'ca-key.pem'));
}

/**
 * Runs `npm run dev` as a user does (npm, then the dev-stack script it runs), on the given ports
 * and state folder, and resolves once it printed "Ready". `--ignore-scripts` skips only the
 * `predev` build, which `npm test` has done already.
 */
export async function startDevStack(
  stateDir: string,
  ports: DevStackPorts,
  extraArgs: string[] = [],
): Promise<RunningDevStack> {
  const args = [
    'run',
    'dev',
    '--ignore-scripts',
    '--',
    '--state-dir',
    stateDir,
    '--port',
    String(ports.app),
    '--emulator-port',
    String(ports.emulator),
    '--api-port',
    String(ports.api),
    '--notes-api-port',
    String(ports.notesApi),
    '--azurite-ports',
    ports.azurite.join(','),
    ...extraArgs,
  ];
  const npm = spawn('npm', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/^Ready\. Open /m.test(output)) resolve();
    };
    npm.stdout.on('data', onData);
    npm.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`npm run dev exited before it was ready:\n${output}`)));
  });
  return { appOrigin: `http://localhost:${ports.app}`, ports, npm, output: () => output, exited };
}

interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly command: string;
}

/** /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses. */
function readStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state = '', ppid = ''] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** The process and all its descendants, with their command lines (Linux /proc). */
export function processTree(rootPid: number): ProcessInfo[] {
  const all: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat === undefined) continue;
    let command: string;
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
      continue;
    }
    all.push({ pid, ppid: stat.ppid, command });
  }
  const tree = all.filter((info) => info.pid === rootPid);
  for (let index = 0; index < tree.length; index += 1) {
    const parent = tree[index]?.pid;
    tree.push(...all.filter((info) => info.ppid === parent));
  }
  return tree;
}

/** Alive means not gone and not a zombie waiting for its parent to read its exit status. */
export function isAlive(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

/**
 * Polls until every port is free and none of the processes is alive, or the deadline passes;
 * resolves with what is still held then (empty when everything stopped).
 */
export async function waitUntilAllGone(
  pids: readonly number[],
  ports: readonly number[],
  deadlineMs = 20_000,
): Promise<{ pids: number[]; ports: number[] }> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const livePids = pids.filter(isAlive);
    const heldPorts: number[] = [];
    for (const port of ports) if (!(await isPortFree(port))) heldPorts.push(port);
    if ((livePids.length === 0 && heldPorts.length === 0) || Date.now() > deadline) {
      return { pids: livePids, ports: heldPorts };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function allPorts(ports: DevStackPorts): number[] {
  return [ports.app, ports.emulator, ports.api, ports.notesApi, ...ports.azurite];
}
