// Runs the Entra External ID emulator on its own (`npm run emulator`), until Ctrl+C (SIGINT) or
// SIGTERM.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { emulatorDefaults, startEntraEmulator, type EntraEmulator } from './emulator.mts';
import { displayName } from './users.mts';

const usage = `Usage: npm run emulator -- [options]

  --host <address>                    address to listen on (127.0.0.1)
  --port <port>                       port to listen on, 0 for any free one (7443)
  --tenant-id <guid>                  tenant id in the URLs and tokens
  --client-id <id>                    the web app's client id
  --client-secret <secret>            the web app's client secret
  --redirect-uri <url>                a redirect URI of the web app (repeatable); a
                                      post_logout_redirect_uri must be one of them, as in Entra
  --api-client-id <id>                the protected API's client id (scopes api://<id>/...)
  --cert-dir <dir>                    where the CA and server certificate are kept (.dev/certs)
  --state-dir <dir>                   keep keys, grants and sessions here across restarts
                                      (default: none, in memory)
  -h, --help                          show this help`;

function fail(message: string, exitCode: number): never {
  console.error(`entra-emulator: ${message}`);
  process.exit(exitCode);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7443' },
      'tenant-id': { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'api-client-id': { type: 'string' },
      'cert-dir': { type: 'string', default: '.dev/certs' },
      'state-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  fail(`${(error as Error).message}\n\n${usage}`, 2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const { host } = values;
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) fail(`invalid --port ${values.port}`, 2);

const defaults = emulatorDefaults.client;
let emulator: EntraEmulator;
try {
  emulator = await startEntraEmulator({
    host,
    port,
    tenantId: values['tenant-id'],
    clients: [
      {
        clientId: values['client-id'] ?? defaults.clientId,
        clientSecret: values['client-secret'] ?? defaults.clientSecret,
        redirectUris: values['redirect-uri'] ?? [...defaults.redirectUris],
      },
    ],
    api: { clientId: values['api-client-id'] ?? emulatorDefaults.api.clientId },
    certDir: resolve(values['cert-dir']),
    stateDir: values['state-dir'] === undefined ? undefined : resolve(values['state-dir']),
  });
} catch (error) {
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === 'EADDRINUSE')
    fail(`port ${port} on ${host} is already in use; pick another --port`, 1);
  if (code === 'EACCES' || code === 'EADDRNOTAVAIL')
    fail(`cannot listen on ${host}:${port} (${message})`, 1);
  throw error;
}

const [client] = emulator.clients;
console.log(`Entra External ID emulator
  authority        ${emulator.authority}
                   (MSAL: knownAuthorities ["${new URL(emulator.origin).host}"])
  issuer           ${emulator.issuer}
  CA certificate   ${emulator.caCertPath}
                   (trust it with NODE_EXTRA_CA_CERTS=${emulator.caCertPath})
  client id        ${client?.clientId}
  redirect URIs    ${client?.redirectUris.join(' ')}
  API scopes       ${emulator.api.scopes.map((scope) => `${emulator.api.appIdUri}/${scope}`).join(' ')}
  admin API        ${emulator.origin}/_emulator/
  test users
${emulator.users.map((user) => `    ${user.name ?? ''} <${displayName(user)}>  oid ${user.oid}`).join('\n')}
Press Ctrl+C to stop.`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void emulator.close().then(() => process.exit(0));
  });
}
