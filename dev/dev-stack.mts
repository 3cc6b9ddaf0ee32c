// `npm run dev`: the whole app offline. Starts Azurite, the Entra External ID emulator, the sample
// ToDoList API and the function app (`func start` where Core Tools is installed, else the local
// host), wires them together with keys generated once into .dev/, and stops everything on Ctrl-C.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startAzurite, type Azurite } from './azurite.mts';
import { startEntraEmulator, type EntraEmulator } from './entra-emulator/emulator.mts';
import { isPortFree } from './ports.mts';
import { startTodoListApi, type TodoListApi } from './todolist-api/todolist-api.mts';
import { DEV_IDENTITIES, appSettings, webAppClient } from './dev-settings.mts';

const root = path.resolve(import.meta.dirname, '..');
const devDir = path.join(root, '.dev');
const APP_PORT = Number(process.env.PORT || 7071);
const EMULATOR_PORT = 7443;
const API_PORT = 7072;
const AZURITE_PORTS = [10000, 10001, 10002];
const APP_ORIGIN = `http://localhost:${APP_PORT}`;
const READY_TIMEOUT_MS = 60_000;

interface DevSecrets {
  clientSecret: string;
  sessionKey: string;
  tokenCacheKey: string;
}

function fail(message: string): never {
  console.error(`\nnpm run dev: ${message}`);
  process.exit(1);
}

/** Kept across runs so that a restart does not sign everyone out. */
function loadOrCreateSecrets(): DevSecrets {
  const file = path.join(devDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
  const secrets: DevSecrets = {
    clientSecret: randomBytes(24).toString('base64url'),
    sessionKey: randomBytes(32).toString('base64'),
    tokenCacheKey: randomBytes(32).toString('base64'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

async function checkPorts(): Promise<void> {
  const wanted: [number, string][] = [
    [APP_PORT, 'the function app (set PORT to use another)'],
    [EMULATOR_PORT, 'the Entra emulator'],
    [API_PORT, 'the sample ToDoList API'],
    ...AZURITE_PORTS.map((port): [number, string] => [port, 'Azurite']),
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
      for (const line of lines) console.log(`[${label}] ${line}`);
    });
  }
}

async function waitUntilHealthy(child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the app exited with code ${child.exitCode}`);
    try {
      const response = await fetch(`http://127.0.0.1:${APP_PORT}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the app did not answer /health within ${READY_TIMEOUT_MS / 1000} s`);
}

function printBanner(emulator: EntraEmulator, api: TodoListApi): void {
  const users = emulator.users
    .map((user) => `    ${user.name} <${user.preferred_username}>`)
    .join('\n');
  console.log(`
Ready. Open ${APP_ORIGIN}/ and sign in as a test user:
${users}

  App               ${APP_ORIGIN}  (health: ${APP_ORIGIN}/health)
  Sign in           ${APP_ORIGIN}/auth/signin
  Entra emulator    ${emulator.authority}  (admin: ${emulator.origin}/_emulator/)
  ToDoList API      ${api.endpoint}
  Azurite           blob 10000, queue 10001, table 10002

The emulator's HTTPS certificate is self-signed: your browser warns once on its sign-in page.
To trust it instead, import ${emulator.caCertPath}.
Press Ctrl-C to stop.`);
}

await checkPorts();
mkdirSync(path.join(devDir, 'azurite'), { recursive: true });
const secrets = loadOrCreateSecrets();

let azurite: Azurite | undefined;
let emulator: EntraEmulator | undefined;
let api: TodoListApi | undefined;
let appProcess: ChildProcess | undefined;
let stopping = false;

async function stopAll(exitCode: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log('\nStopping the development stack…');
    if (appProcess && appProcess.exitCode === null) {
      const exited = new Promise((resolve) => appProcess?.once('exit', resolve));
      appProcess.kill('SIGTERM');
      await exited;
    }
    await api?.close();
    await emulator?.close();
    await azurite?.stop();
    console.log('Stopped.');
  }
  process.exit(exitCode);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll(0));
}

try {
  console.log('Starting Azurite (data in .dev/azurite)…');
  azurite = await startAzurite({
    tablePort: 10002,
    allServices: true,
    location: path.join(devDir, 'azurite'),
  });

  console.log('Starting the Entra External ID emulator…');
  emulator = await startEntraEmulator({
    port: EMULATOR_PORT,
    certDir: path.join(devDir, 'certs'),
    tenantId: DEV_IDENTITIES.tenantId,
    clients: [webAppClient(APP_ORIGIN, secrets.clientSecret)],
    api: { clientId: DEV_IDENTITIES.apiClientId },
  });

  console.log('Starting the sample ToDoList API…');
  api = await startTodoListApi({
    port: API_PORT,
    issuer: emulator.issuer,
    jwksUri: emulator.jwksUri,
    audience: DEV_IDENTITIES.apiClientId,
    caCertPem: emulator.caCertPem,
  });

  const useCoreTools = hasCoreTools();
  console.log(
    useCoreTools
      ? 'Starting the app with func start…'
      : 'Starting the app on the local host (Core Tools not found)…',
  );
  const env = {
    ...process.env,
    ...appSettings({
      appOrigin: APP_ORIGIN,
      authority: emulator.authority,
      clientSecret: secrets.clientSecret,
      todoListEndpoint: api.endpoint,
      tokenCacheStorage: 'UseDevelopmentStorage=true',
      sessionKeys: secrets.sessionKey,
      tokenCacheKeys: secrets.tokenCacheKey,
    }),
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    FUNCTIONS_WORKER_RUNTIME: 'node',
    NODE_EXTRA_CA_CERTS: emulator.caCertPath,
    PORT: String(APP_PORT),
  };
  const [command, args] = useCoreTools
    ? ['func', ['start', '--port', String(APP_PORT)]]
    : [process.execPath, [path.join(root, 'dev/local-host/cli.mts')]];
  appProcess = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  prefixOutput(appProcess, 'app');
  appProcess.once('exit', (code) => {
    if (!stopping) {
      console.error(`The app exited (code ${code}).`);
      void stopAll(1);
    }
  });
  await waitUntilHealthy(appProcess);
  printBanner(emulator, api);
} catch (error) {
  console.error(`\nnpm run dev: ${(error as Error).message}`);
  await stopAll(1);
}
