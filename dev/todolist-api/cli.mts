// Starts the sample ToDoList API for local development: see todolist-api.mts.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startTodoListApi } from './todolist-api.mts';
import type { TodoListApi } from './todolist-api.mts';

const usage =
  'Usage: npm run todolist-api -- --issuer <url> --jwks-uri <url> --audience <api-client-id>' +
  ' [--ca-cert <file.pem>] [--port 7072]';

function fail(message: string, exitCode = 1): never {
  console.error(message);
  process.exit(exitCode);
}

function readArgs() {
  try {
    return parseArgs({
      options: {
        issuer: { type: 'string' },
        'jwks-uri': { type: 'string' },
        audience: { type: 'string' },
        'ca-cert': { type: 'string' },
        port: { type: 'string', default: '7072' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return fail(`${(err as Error).message}\n${usage}`, 2);
  }
}

const values = readArgs();
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const { issuer, 'jwks-uri': jwksUri, audience } = values;
if (!issuer || !jwksUri || !audience)
  fail(`--issuer, --jwks-uri and --audience are required.\n${usage}`, 2);
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535)
  fail(`--port must be 0-65535.\n${usage}`, 2);

let caCertPem: string | undefined;
if (values['ca-cert'] !== undefined) {
  try {
    caCertPem = readFileSync(values['ca-cert'], 'utf8');
  } catch (err) {
    fail(`Cannot read --ca-cert ${values['ca-cert']}: ${(err as Error).message}`);
  }
}

let api: TodoListApi;
try {
  api = await startTodoListApi({ issuer, jwksUri, audience, caCertPem, port });
} catch (err) {
  fail(
    (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
      ? `Port ${port} on 127.0.0.1 is already in use: stop the other process or pass --port.`
      : `Cannot start the ToDoList API: ${(err as Error).message}`,
  );
}
console.log(`Sample ToDoList API listening on ${api.endpoint} (admin under ${api.origin}/_api/)`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    api.close().then(
      () => console.log('Sample ToDoList API stopped.'),
      (err: unknown) => fail(`Error while stopping: ${(err as Error).message}`),
    );
  });
}
