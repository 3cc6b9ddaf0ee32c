import {
  createHash,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
  constants,
  X509Certificate,
} from 'node:crypto';
import { request } from 'node:https';
import { dirname } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startAppProcess, type AppProcess } from '../../dev/app-process.mts';
import { appSettings, DEV_IDENTITIES } from '../../dev/dev-settings.mts';
import { startEntraEmulator, type EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import { findFreePort } from '../../dev/ports.mts';
import { startTodoListApi, type TodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import { tokenStoreOn } from '../resilience/support/cluster.ts';
import { signInThroughApp } from '../support/app-session.ts';
import { testStack } from '../support/stack.ts';
import { UserAgent } from '../support/user-agent.ts';

// A certificate-only app: the emulator registers the web app with a certificate and no secret
// (so a secret could not work), and the app has CLIENT_CERTIFICATE and no CLIENT_SECRET. Signing in
// redeems a code and a forced refresh redeems a refresh token, each with a client assertion that
// msal-node signs and the emulator verifies as Entra does (x5t#S256, aud = token endpoint).
const stack = testStack();
const user = {
  oid: `${randomBytes(4).toString('hex')}-0000-4000-8000-000000000001`,
  name: 'Cato Certificate',
  preferred_username: 'cato@certificate.example',
};

let emulator: EntraEmulator;
let api: TodoListApi;
let app: AppProcess;
let origin: string;
let settings: Record<string, string>;

beforeAll(async () => {
  const appPort = await findFreePort();
  origin = `http://localhost:${appPort}`;
  const made = await generate([{ name: 'commonName', value: 'bff web app' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
  });
  emulator = await startEntraEmulator({
    certDir: dirname(stack.emulator.caCertPath),
    clients: [
      {
        clientId: DEV_IDENTITIES.webAppClientId,
        certificatePem: made.cert,
        redirectUris: [`${origin}/auth/redirect`, `${origin}/`],
      },
    ],
    api: { clientId: DEV_IDENTITIES.apiClientId },
    users: [user],
  });
  api = await startTodoListApi({
    issuer: emulator.issuer,
    jwksUri: emulator.jwksUri,
    audience: DEV_IDENTITIES.apiClientId,
    caCertPem: emulator.caCertPem,
    port: await findFreePort(),
  });
  const { CLIENT_SECRET: _unused, ...withoutSecret } = appSettings({
    appOrigin: origin,
    authority: emulator.authority,
    clientSecret: 'unused',
    todoListEndpoint: api.endpoint,
    tokenCacheStorage: inject('azuriteConnectionString'),
    sessionKeys: randomBytes(32).toString('base64'),
    tokenCacheKeys: randomBytes(32).toString('base64'),
    tokenCacheTable: `cert${randomBytes(4).toString('hex')}`,
  });
  settings = {
    ...withoutSecret,
    CLIENT_CERTIFICATE: `${made.cert}\n${made.private}`,
    // Every call reads the row, so the one rewritten below is what the next call sees.
    SESSION_RECHECK_SECONDS: '0',
  };
  app = await startAppProcess({
    port: appPort,
    env: { ...settings, CLIENT_SECRET: '', NODE_EXTRA_CA_CERTS: stack.emulator.caCertPath },
  });
});

afterAll(async () => {
  await app?.stop();
  await api?.close();
  await emulator?.close();
});

describe('a certificate-only app (CLIENT_CERTIFICATE, no secret anywhere)', () => {
  it('signs in and refreshes with client assertions the emulator verifies', async () => {
    expect(emulator.clients[0]?.clientSecret).toBeUndefined();
    const agent = new UserAgent();
    expect(await signInThroughApp(agent, origin, user.preferred_username)).toBe(`${origin}/`);
    expect(emulator.counters().token.authorization_code).toBe(1);
    const call = () =>
      agent.fetch(`${origin}/api/todos`, { headers: { 'X-CSRF': '1', Origin: origin } });
    expect((await call()).status).toBe(200);

    // Drop the cached access tokens, so the next call must redeem the refresh token.
    const store = tokenStoreOn(
      settings.TOKEN_CACHE_STORAGE ?? '',
      settings.TOKEN_CACHE_TABLE ?? '',
      settings.TOKEN_CACHE_KEYS ?? '',
    );
    const partitionKey = `${user.oid}.${emulator.tenantId}`;
    const row = await store.read(partitionKey);
    expect(row).toBeDefined();
    const cache = JSON.parse(row?.serialized ?? '{}') as Record<string, unknown>;
    expect(Object.keys(cache.RefreshToken ?? {})).toHaveLength(1);
    await store.write(partitionKey, JSON.stringify({ ...cache, AccessToken: {} }), row?.etag);

    const refreshesBefore = emulator.counters().token.refresh_token ?? 0;
    expect((await call()).status).toBe(200);
    expect(emulator.counters().token.refresh_token).toBe(refreshesBefore + 1);
  });

  it('refuses a secret, an assertion from an unregistered certificate, and one for another audience', async () => {
    const tokenEndpoint = `${emulator.origin}/${emulator.tenantId}/oauth2/v2.0/token`;
    const registered = new X509Certificate(emulator.clients[0]?.certificatePem ?? '');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    // An assertion as msal-node makes one (PS256, x5t#S256), signed by a key that is not the app's.
    const assertion = (thumbprint: string, aud: string) => {
      const now = Math.floor(Date.now() / 1000);
      const input = `${part({ alg: 'PS256', typ: 'JWT', 'x5t#S256': thumbprint })}.${part({
        aud,
        iss: DEV_IDENTITIES.webAppClientId,
        sub: DEV_IDENTITIES.webAppClientId,
        jti: randomUUID(),
        nbf: now,
        exp: now + 600,
      })}`;
      const signature = sign('sha256', Buffer.from(input), {
        key: privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32,
      });
      return `${input}.${signature.toString('base64url')}`;
    };
    const post = (form: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const outgoing = request(
          tokenEndpoint,
          {
            method: 'POST',
            ca: emulator.caCertPem,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          },
          (response) => {
            let body = '';
            response.on('data', (chunk: Buffer) => (body += chunk.toString()));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
          },
        );
        outgoing.on('error', reject);
        outgoing.end(
          new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: 'x',
            ...form,
          }).toString(),
        );
      });
    const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
    const registeredThumbprint = Buffer.from(
      registered.fingerprint256.replace(/:/g, ''),
      'hex',
    ).toString('base64url');
    const otherThumbprint = createHash('sha256').update('another certificate').digest('base64url');
    const answers = [
      await post({ client_id: DEV_IDENTITIES.webAppClientId, client_secret: 'guess' }),
      await post({
        client_id: DEV_IDENTITIES.webAppClientId,
        client_assertion_type: jwtBearer,
        client_assertion: assertion(otherThumbprint, tokenEndpoint),
      }),
      await post({
        client_id: DEV_IDENTITIES.webAppClientId,
        client_assertion_type: jwtBearer,
        client_assertion: assertion(registeredThumbprint, emulator.issuer),
      }),
      // The registered thumbprint but another key: the signature does not verify.
      await post({
        client_id: DEV_IDENTITIES.webAppClientId,
        client_assertion_type: jwtBearer,
        client_assertion: assertion(registeredThumbprint, tokenEndpoint),
      }),
    ];
    for (const answer of answers) {
      expect(answer.status, answer.body).toBe(401);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_client' });
    }
    expect(answers[1]?.body).toContain('AADSTS700027');
    expect(answers[2]?.body).toContain('invalid audience');
  });
});
