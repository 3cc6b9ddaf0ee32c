import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppProcess, type AppProcess } from '../../dev/app-process.mts';
import { startAzurite, type Azurite } from '../../dev/azurite.mts';
import { findFreePort } from '../../dev/ports.mts';
import { testStack } from '../support/stack.ts';

const stack = testStack();

describe('/health', () => {
  it('is 200 while the token table answers', async () => {
    const response = await fetch(`${stack.appOrigin}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', tokenStore: 'reachable' });
  });

  describe('with Table Storage stopped', () => {
    let azurite: Azurite;
    let app: AppProcess;
    beforeAll(async () => {
      azurite = await startAzurite();
      app = await startAppProcess({
        port: await findFreePort(),
        env: {
          ...stack.settings,
          TOKEN_CACHE_STORAGE: azurite.connectionString,
          NODE_EXTRA_CA_CERTS: stack.emulator.caCertPath,
        },
      });
    });
    afterAll(async () => {
      await app.stop();
      await azurite.stop();
    });

    it('is 503 with Retry-After, and 200 again once it is back', async () => {
      expect((await fetch(`${app.origin}/health`)).status).toBe(200);
      await azurite.stop();
      const down = await fetch(`${app.origin}/health`);
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toBe('5');
      expect(down.headers.get('content-type')).toBe('application/problem+json');
      const body = await down.text();
      expect(body).not.toMatch(/at .*\.js|AccountKey|devstoreaccount1/);

      azurite = await startAzurite({ tablePort: azurite.tablePort });
      expect((await fetch(`${app.origin}/health`)).status).toBe(200);
    });
  });
});
