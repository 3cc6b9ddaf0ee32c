// `npm run dev`: the whole app offline. Starts Azurite, the Entra External ID emulator, the two
// sample APIs (ToDoList as `todos`, notes as `notes`, each with its own audience and scopes) and
// the function app (`func start` where Core Tools is installed, else the local host), wires them
// together with keys generated once into .dev/, and stops everything on Ctrl-C, on SIGINT, SIGTERM
// or SIGHUP, when its parent (npm) goes away, or when one of its parts exits. What the stack
// stores (Azurite's tables, the emulator's sign-ins and keys, the APIs' items) is kept in .dev/
// across restarts; `--fresh` deletes it first.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startAzurite, storageConnectionString, type Azurite } from './azurite.mts';
import { startEntraEmulator, type EntraEmulator } from './entra-emulator/emulator.mts';
import { isPortFree } from './ports.mts';
import { startNotesApi, type NotesApi } from './notes-api/notes-api.mts';
import { startTodoListApi, type TodoListApi } from './todolist-api/todolist-api.mts';
import {
  DEV_IDENTITIES,
  NOTES_API_SCOPES,
  appSettings,
  notesApiRegistration,
  webAppClient,
} from './dev-settings.mts';

const root = path.resolve(import.meta.dirname, '..');
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

const usage = `Usage: npm run dev [-- options]

  --fresh                     start clean: delete the stored data first (see below)
  --state-dir <dir>           where the stack keeps its state (.dev)
  --port <port>               the function app's port (PORT, else 7071)
  --emulator-port <port>      the Entra emulator's port (7443)
  --api-port <port>           the sample ToDoList API's port (7072)
  --notes-api-port <port>     the sample notes API's port (7073)
  --azurite-ports <b,q,t>     Azurite's blob, queue and table ports (10000,10001,10002)
  -h, --help                  show this help

State kept in the state directory across restarts, so users stay signed in with their to-dos
and notes:
  azurite/          Azurite's storage: the app's sessions and token caches
  entra-emulator/   the emulator's signing and cookie keys, grants, sessions, refresh tokens
  todolist-api/     the sample ToDoList API's to-do items
  notes-api/        the sample notes API's notes
--fresh deletes these four. It keeps certs/ (the emulator's HTTPS certificate, which you may
have trusted in a browser) and secrets.json (the app's client secret and encryption keys).`;

function fail(message: string): never {
  console.error(`\nnpm run dev: ${message}`);
  process.exit(1);
}

function readOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        fresh: { type: 'boolean', default: false },
        'state-dir': { type: 'string', default: path.join(root, '.dev') },
        port: { type: 'string', default: process.env.PORT || '7071' },
        'emulator-port': { type: 'string', default: '7443' },
        'api-port': { type: 'string', default: '7072' },
        'notes-api-port': { type: 'string', default: '7073' },
        'azurite-ports': { type: 'string', default: '10000,10001,10002' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const port = (name: string, text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > 65_535) {
      fail(`${name} "${text}" is not a port number (1-65535)`);
    }
    return value;
  };
  const [blob, queue, table, ...extra] = values['azurite-ports'].split(',');
  if (table === undefined || extra.length > 0) fail('--azurite-ports takes three ports: b,q,t');
  return {
    fresh: values.fresh,
    stateDir: path.resolve(values['state-dir']),
    appPort: port('--port', values.port),
    emulatorPort: port('--emulator-port', values['emulator-port']),
    apiPort: port('--api-port', values['api-port']),
    notesApiPort: port('--notes-api-port', values['notes-api-port']),
    azurite: {
      blob: port('--azurite-ports', blob ?? ''),
      queue: port('--azurite-ports', queue ?? ''),
      table: port('--azurite-ports', table),
    },
  };
}

const options = readOptions();
const { stateDir } = options;
const APP_ORIGIN = `http://localhost:${options.appPort}`;
// The app's cookies belong to the host of REDIRECT_URI (localhost): an address the app also
// listens on (127.0.0.1) is not a URL to open, so the app's own listing is rewritten to it.
const APP_LISTEN_ORIGIN = `http://127.0.0.1:${options.appPort}`;

interface DevSecrets {
  clientSecret: string;
  sessionKey: string;
  tokenCacheKey: string;
}

/** Kept across runs so that a restart does not sign everyone out. */
function loadOrCreateSecrets(): DevSecrets {
  const file = path.join(stateDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
  const secrets: DevSecrets = {
    clientSecret: randomBytes(24).toString('base64url'),
    sessionKey: randomBytes(32).toString('base64'),
    tokenCacheKey: randomBytes(32).toString('base64'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** The folders --fresh deletes: everything the stack stored, not its certificate or secrets. */
const STATE_FOLDERS = ['azurite', 'entra-emulator', 'todolist-api', 'notes-api'];

async function checkPorts(): Promise<void> {
  const wanted: [number, string][] = [
    [options.appPort, 'the function app (--port or PORT to use another)'],
    [options.emulatorPort, 'the Entra emulator (--emulator-port)'],
    [options.apiPort, 'the sample ToDoList API (--api-port)'],
    [options.notesApiPort, 'the sample notes API (--notes-api-port)'],
    ...Object.values(options.azurite).map((port): [number, string] => [
      port,
      'Azurite (--azurite-ports)',
    ]),
  ];
  const taken: string[] = [];
  for (const [port, owner] of wanted) {
    if (!(await isPortFree(port))) taken.push(`port ${port} (for ${owner})`);
  }
  if (taken.length > 0) {
    fail(
      `${taken.join(', ')} already in use. Stop whatever uses it (another "npm run dev"?) and try again.`,
    );
  }
}

function hasCoreTools(): boolean {
  return spawnSync('func', ['--version'], { stdio: 'ignore' }).status === 0;
}

function prefixOutput(child: ChildProcess, label: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        console.log(`[${label}] ${line.replaceAll(APP_LISTEN_ORIGIN, APP_ORIGIN)}`);
      }
    });
  }
}

/** Thrown by the start-up when a stop began during one of its steps, so it starts nothing more. */
class StopRequested extends Error {}

async function waitUntilHealthy(child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !stopping) {
    if (child.exitCode !== null) throw new Error(`the app exited with code ${child.exitCode}`);
    try {
      const response = await fetch(`${APP_LISTEN_ORIGIN}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (stopping) throw new StopRequested();
  throw new Error(`the app did not answer /health within ${READY_TIMEOUT_MS / 1000} s`);
}

function printBanner(emulator: EntraEmulator, api: TodoListApi, notes: NotesApi): void {
  const users = emulator.users
    .map((user) => `    ${user.name} <${user.preferred_username}>`)
    .join('\n');
  const { blob, queue, table } = options.azurite;
  console.log(`
Ready. Open ${APP_ORIGIN}/ and sign in as a test user:
${users}

  App               ${APP_ORIGIN}  (health: ${APP_ORIGIN}/health)
  Entra emulator    ${emulator.authority}  (admin API: ${emulator.origin}/_emulator/)
  ToDoList API      ${api.endpoint}  (the app's /api/todos; faults: dev/todolist-api/README.md)
  Notes API         ${notes.endpoint}  (the app's /api/notes; what it received: ${notes.origin}/_api/requests)
  Azurite           blob ${blob}, queue ${queue}, table ${table}
  State             ${stateDir} (kept across restarts; npm run dev -- --fresh starts clean)

Use ${APP_ORIGIN}, not 127.0.0.1: the app's cookies belong to the host of its redirect URI.
The emulator's HTTPS certificate is self-signed: your browser warns once on its sign-in page.
To trust it instead, import ${emulator.caCertPath}.
Press Ctrl-C to stop.`);
}

let azurite: Azurite | undefined;
let emulator: EntraEmulator | undefined;
let api: TodoListApi | undefined;
let notesApi: NotesApi | undefined;
let appProcess: ChildProcess | undefined;
// The start-up step under way: stopping waits for it, so a part that was starting is stopped too.
let pendingStep: Promise<unknown> = Promise.resolve();
let stopping = false;

/**
 * Runs a start-up step: `keep` records the started part before a stop that waits for the step
 * looks for it, and a stop asked for meanwhile ends the start-up there.
 */
function step<T>(promise: Promise<T>, keep: (part: T) => void = () => undefined): Promise<T> {
  const kept = promise.then((part) => {
    keep(part);
    return part;
  });
  pendingStep = kept.catch(() => undefined);
  return kept.then((part) => {
    if (stopping) throw new StopRequested();
    return part;
  });
}

async function stopApp(): Promise<void> {
  const child = appProcess;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function stopAll(exitCode: number, reason: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${reason}: stopping the development stack…`);
  await pendingStep;
  await stopApp();
  await notesApi?.close();
  await api?.close();
  await emulator?.close();
  await azurite?.stop();
  console.log('Stopped.');
  process.exit(exitCode);
}

// npm forwards SIGINT and SIGTERM to the script it runs (package.json runs this with `exec`, so
// there is no shell in between to swallow them); SIGHUP comes when the terminal closes.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => void stopAll(0, signal));
}

// npm does not forward SIGHUP, and a parent killed outright forwards nothing: when the parent is
// gone this process is re-parented, which is the only sign of it Node offers.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) void stopAll(0, `The parent process (${parentPid}) exited`);
}, 500).unref();

await checkPorts();
if (options.fresh) {
  for (const folder of STATE_FOLDERS)
    rmSync(path.join(stateDir, folder), { recursive: true, force: true });
  console.log(
    `--fresh: deleted ${STATE_FOLDERS.map((folder) => `${folder}/`).join(', ')} in ${stateDir}`,
  );
}
mkdirSync(path.join(stateDir, 'azurite'), { recursive: true });
const secrets = loadOrCreateSecrets();

try {
  console.log(`Starting Azurite (data in ${path.join(stateDir, 'azurite')})…`);
  const startedAzurite = await step(
    startAzurite({
      allServices: true,
      blobPort: options.azurite.blob,
      queuePort: options.azurite.queue,
      tablePort: options.azurite.table,
      location: path.join(stateDir, 'azurite'),
    }),
    (part) => (azurite = part),
  );
  void startedAzurite.exited.then(() => void stopAll(1, 'Azurite exited'));

  console.log('Starting the Entra External ID emulator…');
  const startedEmulator = await step(
    startEntraEmulator({
      port: options.emulatorPort,
      certDir: path.join(stateDir, 'certs'),
      stateDir: path.join(stateDir, 'entra-emulator'),
      tenantId: DEV_IDENTITIES.tenantId,
      clients: [webAppClient(APP_ORIGIN, secrets.clientSecret)],
      api: { clientId: DEV_IDENTITIES.apiClientId },
      otherApis: [notesApiRegistration()],
    }),
    (part) => (emulator = part),
  );

  console.log('Starting the sample ToDoList API…');
  const startedApi = await step(
    startTodoListApi({
      port: options.apiPort,
      issuer: startedEmulator.issuer,
      jwksUri: startedEmulator.jwksUri,
      audience: DEV_IDENTITIES.apiClientId,
      caCertPem: startedEmulator.caCertPem,
      dataFile: path.join(stateDir, 'todolist-api', 'items.json'),
    }),
    (part) => (api = part),
  );

  console.log('Starting the sample notes API…');
  const startedNotesApi = await step(
    startNotesApi({
      port: options.notesApiPort,
      issuer: startedEmulator.issuer,
      jwksUri: startedEmulator.jwksUri,
      audience: DEV_IDENTITIES.notesApiClientId,
      readScope: NOTES_API_SCOPES.read,
      writeScope: NOTES_API_SCOPES.write,
      caCertPem: startedEmulator.caCertPem,
      dataFile: path.join(stateDir, 'notes-api', 'notes.json'),
    }),
    (part) => (notesApi = part),
  );

  const useCoreTools = hasCoreTools();
  console.log(
    useCoreTools
      ? 'Starting the app with func start…'
      : 'Starting the app on the local host (Core Tools not found)…',
  );
  const storage = storageConnectionString(options.azurite);
  const env = {
    ...process.env,
    ...appSettings({
      appOrigin: APP_ORIGIN,
      authority: startedEmulator.authority,
      clientSecret: secrets.clientSecret,
      todoListEndpoint: startedApi.endpoint,
      notesEndpoint: startedNotesApi.endpoint,
      tokenCacheStorage: storage,
      sessionKeys: secrets.sessionKey,
      tokenCacheKeys: secrets.tokenCacheKey,
    }),
    AzureWebJobsStorage: storage,
    FUNCTIONS_WORKER_RUNTIME: 'node',
    NODE_EXTRA_CA_CERTS: startedEmulator.caCertPath,
    PORT: String(options.appPort),
  };
  const [command, args] = useCoreTools
    ? ['func', ['start', '--port', String(options.appPort)]]
    : [process.execPath, [path.join(root, 'dev/local-host/cli.mts')]];
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  appProcess = child;
  prefixOutput(child, 'app');
  child.once(
    'exit',
    (code, signal) => void stopAll(1, `The app exited (${signal ?? `code ${code}`})`),
  );
  await step(waitUntilHealthy(child));
  printBanner(startedEmulator, startedApi, startedNotesApi);
} catch (error) {
  if (!(error instanceof StopRequested)) {
    console.error(`\nnpm run dev: ${(error as Error).message}`);
    await stopAll(1, 'Start-up failed');
  }
}
