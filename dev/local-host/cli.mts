// `npm run start:local`: serves the function app in the current directory where `func start` is not
// available. Settings come from local.settings.json `Values` unless the environment already has them.
// Environment: PORT (default 7071), HOST (default 127.0.0.1); the host's own app settings
// FUNCTIONS_REQUEST_BODY_SIZE_LIMIT and AzureWebJobsDisableHomepage.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadFunctionApp, type FunctionApp } from './function-app.mts';
import {
  createLocalHost,
  fullRoute,
  isHomepageDisabled,
  requestBodySizeLimit,
  type LocalHost,
} from './local-host.mts';

function fail(message: string): never {
  console.error(`Error: ${message}`);
  process.exit(1);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const appRoot = process.cwd();

// Before the app loads: its config module reads process.env at import.
const settingsFile = path.join(appRoot, 'local.settings.json');
if (existsSync(settingsFile)) {
  let values: Record<string, unknown>;
  try {
    const settings = JSON.parse(readFileSync(settingsFile, 'utf8').replace(/^\uFEFF/, '')) as {
      Values?: Record<string, unknown>;
    };
    values = settings.Values ?? {};
  } catch (err) {
    fail(`cannot read ${settingsFile}: ${messageOf(err)}`);
  }
  for (const [name, value] of Object.entries(values)) {
    process.env[name] ??= String(value);
  }
}

const port = Number(process.env.PORT || 7071);
if (!Number.isInteger(port) || port < 0 || port > 65535)
  fail(`PORT "${process.env.PORT}" is not a port number`);
const host = process.env.HOST || '127.0.0.1';

let app: FunctionApp;
try {
  app = await loadFunctionApp(appRoot);
} catch (err) {
  // Without the settings file, the list of missing settings that follows is a symptom: say the fix first.
  const hint = existsSync(settingsFile)
    ? ''
    : `there is no local.settings.json in ${appRoot}. Copy local.settings.sample.json to ` +
      'local.settings.json and fill it in (docs: README "Settings"), or run `npm run dev` for the ' +
      'whole offline stack.\n';
  fail(`${hint}the function app did not load: ${messageOf(err)}`);
}

let localHost: LocalHost;
try {
  localHost = await createLocalHost(app, {
    port,
    host,
    // App settings the host reads itself (EnvironmentSettingNames.cs).
    maxRequestBodySize: requestBodySizeLimit(process.env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT),
    disableHomepage: isHomepageDisabled(process.env.AzureWebJobsDisableHomepage),
  });
} catch (err) {
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    fail(
      `Port ${port} is unavailable. Close the process using that port, or set PORT to another port.`,
    );
  }
  fail(messageOf(err));
}

// The listing of `func start`.
const lines = ['', 'Functions:', ''];
for (const fn of app.httpFunctions) {
  const methods = fn.methods?.join(',') ?? '*';
  lines.push(
    `\t${fn.name}: [${methods}] ${localHost.origin}/${fullRoute(app.routePrefix, fn.route)}`,
    '',
  );
}
for (const fn of app.otherFunctions) lines.push(`\t${fn.name}: ${fn.triggerType}`, '');
lines.push(`Local host listening on ${localHost.origin} (Ctrl+C to stop)`);
console.log(lines.join('\n'));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    localHost.close().then(
      () => process.exit(0),
      (err: unknown) => fail(messageOf(err)),
    );
  });
}
