import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startAppProcess, type AppProcess } from '../../dev/app-process.mts';
import { appSettings, DEV_IDENTITIES, webAppClient } from '../../dev/dev-settings.mts';
import { loadOrCreateTlsMaterial } from '../../dev/entra-emulator/certificate.mts';
import { startEntraEmulator, type EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import { findFreePort } from '../../dev/ports.mts';
import { startTodoListApi, type TodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import { createTableClient, TokenTable } from '../../src/lib/tokens/table-storage.ts';
import { EVENT_PREFIX } from '../../src/lib/telemetry/telemetry-events.ts';
import { TokenCacheStore } from '../../src/lib/tokens/token-cache-store.ts';
import { signInThroughApp } from '../support/app-session.ts';
import { testStack, testUser } from '../support/stack.ts';
import { uniqueTableName } from '../support/table-storage.ts';
import { UserAgent } from '../support/user-agent.ts';

// Everything the app writes during a full flow (its console output and the telemetry it exports)
// is searched for every credential that flowed through it: the tokens the IdP issued, the
// authorization code, the cookies, the client secret and the keys.

const stack = testStack();
// Of this file alone (see TEST_USERS).
const user = testUser('sue@contoso.example');
const clientSecret = randomBytes(24).toString('base64url');
const sessionKeys = randomBytes(32).toString('base64');
const tokenCacheKeys = randomBytes(32).toString('base64');
const tableName = uniqueTableName('hygiene');
const connectionString = inject('azuriteConnectionString');

/**
 * Stands in for Application Insights' ingestion endpoint and keeps every envelope it is sent. Over
 * HTTPS, as the exporter insists.
 */
class FakeIngestion {
  readonly bodies: string[] = [];
  private readonly server: Server;

  constructor(tls: { cert: string; key: string }) {
    this.server = createServer(tls, (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const raw = Buffer.concat(chunks);
        const gzip = request.headers['content-encoding'] === 'gzip';
        this.bodies.push((gzip ? gunzipSync(raw) : raw).toString('utf8'));
        response.writeHead(200, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ itemsReceived: 0, itemsAccepted: 0, errors: [] }));
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The origins of the remote dependencies reported so far. */
  dependencyOrigins(): string[] {
    return this.bodies
      .flatMap((body) => body.split('\n').filter((line) => line.trim() !== ''))
      .flatMap((line) => JSON.parse(line) as unknown)
      .flatMap((envelope) => {
        const data = (envelope as { data?: { baseType?: string; baseData?: { data?: string } } })
          .data;
        return data?.baseType === 'RemoteDependencyData' && data.baseData?.data !== undefined
          ? [new URL(data.baseData.data).origin]
          : [];
      });
  }
}

/** A user agent that also remembers every cookie value and authorization code it was handed. */
class RecordingAgent extends UserAgent {
  readonly cookieValues = new Set<string>();
  readonly codes = new Set<string>();

  override async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const response = await super.fetch(url, init);
    for (const line of response.headers.getSetCookie()) {
      const value = line.split(';')[0]?.split('=').slice(1).join('=') ?? '';
      if (value.length >= 16) this.cookieValues.add(value);
    }
    const location = response.headers.get('location');
    const code = location === null ? null : new URL(location, url).searchParams.get('code');
    if (code !== null) this.codes.add(code);
    return response;
  }
}

/** The parts of a credential worth searching for: the whole, and each long JWT segment. */
function fragmentsOf(secret: string): string[] {
  const segments = secret.split('.').filter((segment) => segment.length >= 20);
  return [secret, ...(segments.length > 1 ? segments : [])];
}

let emulator: EntraEmulator;
let api: TodoListApi;
let ingestion: FakeIngestion;
let app: AppProcess;
const store = new TokenCacheStore(
  new TokenTable(createTableClient({ kind: 'connectionString', connectionString }, tableName)),
  new KeyRing([Buffer.from(tokenCacheKeys, 'base64')]),
);

/** The secrets of every token in the user's cache row, as the app stored them. */
async function cachedTokens(): Promise<string[]> {
  const row = await store.read(`${user.oid}.${emulator.tenantId}`);
  const cache = JSON.parse(row?.serialized ?? '{}') as Record<
    string,
    Record<string, { secret?: string }> | undefined
  >;
  return ['AccessToken', 'RefreshToken', 'IdToken'].flatMap((kind) =>
    Object.values(cache[kind] ?? {}).flatMap((entry) => entry.secret ?? []),
  );
}

beforeAll(async () => {
  // The run's emulator certificate, which the app already trusts.
  const certDir = dirname(stack.emulator.caCertPath);
  const tls = await loadOrCreateTlsMaterial(certDir, ['127.0.0.1']);
  ingestion = new FakeIngestion({ cert: tls.certPem, key: tls.keyPem });
  const ingestionEndpoint = await ingestion.listen();
  const port = await findFreePort();
  const origin = `http://localhost:${port}`;
  // A private emulator (sharing the run's trusted certificate) whose client is this file's app.
  emulator = await startEntraEmulator({
    certDir,
    tenantId: DEV_IDENTITIES.tenantId,
    clients: [webAppClient(origin, clientSecret)],
    api: { clientId: DEV_IDENTITIES.apiClientId },
    users: [user],
    // MSAL renews an access token in its last five minutes: every API call refreshes.
    lifetimes: { accessTokenSeconds: 120 },
  });
  api = await startTodoListApi({
    issuer: emulator.issuer,
    jwksUri: emulator.jwksUri,
    audience: DEV_IDENTITIES.apiClientId,
    caCertPem: emulator.caCertPem,
  });
  app = await startAppProcess({
    port,
    env: {
      ...appSettings({
        appOrigin: origin,
        authority: emulator.authority,
        clientSecret,
        todoListEndpoint: api.endpoint,
        tokenCacheStorage: connectionString,
        sessionKeys,
        tokenCacheKeys,
        tokenCacheTable: tableName,
      }),
      NODE_EXTRA_CA_CERTS: emulator.caCertPath,
      // Telemetry on, as in Azure, exporting to the fake endpoint with nothing sent elsewhere.
      APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=${randomUUID()};IngestionEndpoint=${ingestionEndpoint}`,
      APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
      APPLICATIONINSIGHTS_SDKSTATS_DISABLED: 'true',
      OTEL_SERVICE_NAME: 'log-hygiene',
    },
  });
});

afterAll(async () => {
  await app?.stop();
  await api?.close();
  await emulator?.close();
  await ingestion?.close();
});

describe('what the app writes during a full flow', () => {
  it('holds no token, code, cookie, secret or key, and reports the flow as events and dependencies', async () => {
    const agent = new RecordingAgent();
    const secrets = new Map<string, string>([
      [clientSecret, 'the client secret'],
      [sessionKeys, 'the session key'],
      [tokenCacheKeys, 'the token-cache key'],
    ]);

    expect(await signInThroughApp(agent, app.origin, user.preferred_username)).toBe(
      `${app.origin}/`,
    );
    for (const token of await cachedTokens()) secrets.set(token, 'a token issued at sign-in');

    const me = await agent.fetch(`${app.origin}/auth/me`);
    expect(me.status).toBe(200);
    const todos = await agent.fetch(`${app.origin}/api/todos`, {
      headers: { 'X-CSRF': '1', Origin: app.origin },
    });
    expect(todos.status).toBe(200);
    for (const token of await cachedTokens()) secrets.set(token, 'a token issued by a refresh');

    const signOut = await agent.fetch(`${app.origin}/auth/signout`, {
      method: 'POST',
      headers: { 'X-CSRF': '1', Origin: app.origin },
    });
    expect(signOut.status).toBe(303);
    expect(await cachedTokens()).toEqual([]);

    for (const code of agent.codes) secrets.set(code, 'an authorization code');
    for (const value of agent.cookieValues) secrets.set(value, 'a cookie value');
    expect(agent.codes.size).toBe(1);
    expect([...secrets.values()]).toEqual(
      expect.arrayContaining([
        'a token issued at sign-in',
        'a token issued by a refresh',
        'a cookie value',
      ]),
    );

    // The batch span processor exports every few seconds.
    await expect
      .poll(() => ingestion.dependencyOrigins(), { timeout: 15_000, interval: 250 })
      .toEqual(
        expect.arrayContaining([
          new URL(/TableEndpoint=([^;]+)/.exec(connectionString)?.[1] ?? '').origin,
          emulator.origin,
          new URL(api.endpoint).origin,
        ]),
      );

    const output = app.output();
    const events = output
      .split('\n')
      .flatMap((line) => {
        const at = line.indexOf(`${EVENT_PREFIX} `);
        return at === -1 ? [] : [JSON.parse(line.slice(at + EVENT_PREFIX.length + 1)) as unknown];
      })
      .map((event) => (event as { event: string }).event);
    expect(events).toEqual(
      expect.arrayContaining(['SignInCompleted', 'TokenRefreshed', 'SignedOut']),
    );

    const written = { 'the app output': output, 'the telemetry': ingestion.bodies.join('\n') };
    for (const [secret, kind] of secrets) {
      for (const fragment of fragmentsOf(secret)) {
        for (const [where, text] of Object.entries(written)) {
          expect(text.includes(fragment), `${kind} appears in ${where}`).toBe(false);
        }
      }
    }
  });
});
