// A newcomer's first failures: the log says which dependency failed, where, why, and what to do.
import { afterEach, expect, it } from 'vitest';
import { startAppProcess, type AppProcess } from '../../dev/app-process.mts';
import { tableConnectionString } from '../../dev/azurite.mts';
import { findFreePort } from '../../dev/ports.mts';
import { testStack } from '../support/stack.ts';

let app: AppProcess | undefined;
afterEach(async () => {
  await app?.stop();
  app = undefined;
});

async function startApp(overrides: Record<string, string>): Promise<AppProcess> {
  const port = await findFreePort();
  const { settings } = testStack();
  app = await startAppProcess({
    port,
    env: {
      ...settings,
      REDIRECT_URI: `http://localhost:${port}/auth/redirect`,
      POST_LOGOUT_REDIRECT_URI: `http://localhost:${port}/`,
      ...overrides,
    },
  });
  return app;
}

it('token store unreachable: the endpoint, ECONNREFUSED and how to start Azurite, no account key', async () => {
  // A port nothing listens on: found free, and nothing is started on it.
  const deadPort = await findFreePort();
  const connectionString = tableConnectionString(`http://127.0.0.1:${deadPort}/devstoreaccount1`);
  const started = await startApp({ TOKEN_CACHE_STORAGE: connectionString });
  const response = await fetch(`http://127.0.0.1:${new URL(started.origin).port}/health`);
  expect(response.status).toBe(503);
  const output = started.output();
  expect(output).toContain(`"cause":"ECONNREFUSED 127.0.0.1:${deadPort}"`);
  expect(output).toMatch(/"hint":"Start Azurite: npm run dev starts it/);
  expect(output).not.toContain('AccountKey');
});

it('IdP unreachable: the host name and the DNS error', async () => {
  const started = await startApp({ AUTHORITY: 'https://no-such-tenant.invalid/tenant/' });
  const response = await fetch(`${started.origin}/auth/signin`, { redirect: 'manual' });
  expect(response.status).toBe(503);
  expect(started.output()).toMatch(/"cause":"(ENOTFOUND|EAI_AGAIN) no-such-tenant\.invalid"/);
  expect(started.output()).toMatch(/"hint":"Check TENANT_SUBDOMAIN or AUTHORITY/);
});
