// A second app instance in its own process, for scale-out tests: builds the token service from the
// built app (dist/) with the settings in argv[2], waits for "go" on stdin, refreshes the user's
// token once and prints the outcome as one JSON line. Its own lines start with `worker:`; the app
// may log other lines to stdout too.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import type * as ConfigTypes from '../../src/lib/config.ts';
import type * as ServicesTypes from '../../src/lib/app-services.ts';

const require = createRequire(import.meta.url);
type ConfigModule = typeof ConfigTypes;
type ServicesModule = typeof ServicesTypes;
const { loadConfig } = require('../../dist/lib/config.js') as ConfigModule;
const { createAppServices } = require('../../dist/lib/app-services.js') as ServicesModule;

const { env, homeAccountId, scopes } = JSON.parse(process.argv[2] ?? '{}') as {
  env: Record<string, string>;
  homeAccountId: string;
  scopes: string[];
};
const { tokenService, authorityMetadata } = createAppServices(loadConfig(env), { warn: () => {} });
await authorityMetadata.get();
console.log('worker:ready');

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line !== 'go') continue;
  try {
    const token = await tokenService.acquireToken(homeAccountId, scopes, { forceRefresh: true });
    console.log(`worker:${JSON.stringify({ ok: true, expiresOn: token.expiresOn })}`);
  } catch (error) {
    console.log(`worker:${JSON.stringify({ ok: false, error: (error as Error).name })}`);
  }
  break;
}
lines.close();
