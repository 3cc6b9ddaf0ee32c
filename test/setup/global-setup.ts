import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { startAppProcess } from '../../dev/app-process.mts';
import { startAzurite } from '../../dev/azurite.mts';
import { appSettings, DEV_IDENTITIES, webAppClient } from '../../dev/dev-settings.mts';
import { startEntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import { findFreePort } from '../../dev/ports.mts';
import { startTodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import { TEST_USERS, type TestStack } from '../support/stack.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    azuriteConnectionString: string;
    stack: TestStack;
  }
}

/**
 * Starts the real parts once for the whole run: Azurite in memory, the Entra emulator, the sample
 * ToDoList API and the built app on the local host, wired as `npm run dev` wires them. Always stops
 * them, whatever the tests did.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: (() => Promise<void>)[] = [];
  const teardown = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const azurite = await startAzurite();
    stops.push(() => azurite.stop());

    const appPort = await findFreePort();
    const appOrigin = `http://localhost:${appPort}`;
    const clientSecret = randomBytes(24).toString('base64url');
    const emulator = await startEntraEmulator({
      tenantId: DEV_IDENTITIES.tenantId,
      clients: [webAppClient(appOrigin, clientSecret)],
      api: { clientId: DEV_IDENTITIES.apiClientId },
      users: TEST_USERS,
    });
    stops.push(() => emulator.close());
    // Test workers start after this and inherit it: Node reads it only at process start.
    process.env.NODE_EXTRA_CA_CERTS = emulator.caCertPath;

    const api = await startTodoListApi({
      issuer: emulator.issuer,
      jwksUri: emulator.jwksUri,
      audience: DEV_IDENTITIES.apiClientId,
      caCertPem: emulator.caCertPem,
    });
    stops.push(() => api.close());

    const settings = appSettings({
      appOrigin,
      authority: emulator.authority,
      clientSecret,
      todoListEndpoint: api.endpoint,
      tokenCacheStorage: azurite.connectionString,
      sessionKeys: randomBytes(32).toString('base64'),
      tokenCacheKeys: randomBytes(32).toString('base64'),
    });
    const app = await startAppProcess({
      port: appPort,
      env: { ...settings, NODE_EXTRA_CA_CERTS: emulator.caCertPath },
    });
    stops.push(() => app.stop());

    project.provide('azuriteConnectionString', azurite.connectionString);
    project.provide('stack', {
      settings,
      appOrigin: app.origin,
      emulator: {
        origin: emulator.origin,
        authority: emulator.authority,
        issuer: emulator.issuer,
        jwksUri: emulator.jwksUri,
        tenantId: emulator.tenantId,
        caCertPath: emulator.caCertPath,
        caCertPem: emulator.caCertPem,
        users: emulator.users.map(({ oid, name, preferred_username }) => ({
          oid,
          name,
          preferred_username,
        })),
      },
      api: { origin: api.origin, endpoint: api.endpoint },
    });
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}
