import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { TableClient } from '@azure/data-tables';
import { expect } from 'vitest';
import { startAppProcess, type AppProcess } from '../../../dev/app-process.mts';
import { startAzurite, type Azurite } from '../../../dev/azurite.mts';
import { appSettings, DEV_IDENTITIES, webAppClient } from '../../../dev/dev-settings.mts';
import {
  startEntraEmulator,
  type EntraEmulator,
  type Lifetimes,
  type TestUser,
} from '../../../dev/entra-emulator/emulator.mts';
import { findFreePort } from '../../../dev/ports.mts';
import { startTodoListApi, type TodoListApi } from '../../../dev/todolist-api/todolist-api.mts';
import type * as KeyRingModule from '../../../src/lib/tokens/key-ring.ts';
import type * as TableStorageModule from '../../../src/lib/tokens/table-storage.ts';
import type * as TokenCacheStoreModule from '../../../src/lib/tokens/token-cache-store.ts';
import { signInThroughApp } from '../../support/app-session.ts';
import { testStack } from '../../support/stack.ts';
import { UserAgent } from '../../support/user-agent.ts';
import { rawRequest, type RawAnswer } from '../../security/support/http.ts';

// The built app's own modules (dist/), as the app processes run them: rows are read the way the
// app reads them, whatever the sources under test look like at the moment.
const require = createRequire(import.meta.url);
const { KeyRing } = require('../../../dist/lib/tokens/key-ring.js') as typeof KeyRingModule;
const { createTableClient, TokenTable } =
  require('../../../dist/lib/tokens/table-storage.js') as typeof TableStorageModule;
const { TokenCacheStore, TOKEN_CACHE_ROW_KEY } =
  require('../../../dist/lib/tokens/token-cache-store.js') as typeof TokenCacheStoreModule;
export type TokenCacheStore = TokenCacheStoreModule.TokenCacheStore;
export { TOKEN_CACHE_ROW_KEY };

export const SESSION_COOKIE = '__Host-bff-session';

/** A token table read with the built app's own TokenCacheStore; `keys` as in TOKEN_CACHE_KEYS. */
export function tokenStoreOn(
  connectionString: string,
  tableName: string,
  keys: string,
): TokenCacheStore {
  return new TokenCacheStore(
    new TokenTable(createTableClient({ kind: 'connectionString', connectionString }, tableName)),
    new KeyRing(keys.split(',').map((key) => Buffer.from(key, 'base64'))),
  );
}

/** Users of a private emulator: made-up, seen by no other file. */
export function privateUsers(domain: string, names: readonly string[]): TestUser[] {
  return names.map((name, index) => ({
    oid: `${randomBytes(4).toString('hex')}-0000-4000-8000-${String(index + 1).padStart(12, '0')}`,
    name: `${name[0]?.toUpperCase()}${name.slice(1)} ${domain}`,
    preferred_username: `${name}@${domain}.example`,
  }));
}

export interface ClusterOptions {
  readonly users: readonly TestUser[];
  /** App processes sharing one table, emulator and API; default 1. */
  readonly apps?: number;
  /** Settings added to every app process (e.g. TODOLIST_TIMEOUT_MS). */
  readonly appEnv?: Readonly<Record<string, string>>;
  /**
   * Where the token table lives: an Azurite of the cluster's own (the default; `persistent` keeps
   * its data on disk across a restart), or a given connection string (with a table of its own).
   */
  readonly storage?:
    | { readonly kind: 'own'; readonly persistent?: boolean }
    | { readonly kind: 'shared'; readonly connectionString: string };
  /** The table endpoint each app process uses, e.g. a proxy in front of Azurite. */
  readonly connectionStringFor?: (appIndex: number, azuriteConnectionString: string) => string;
  readonly lifetimes?: Partial<Lifetimes>;
}

/**
 * A private copy of the offline stack for one test file: an Entra emulator (sharing the run's
 * trusted certificate), the sample API, Table Storage and any number of app processes, wired as
 * the global setup wires the shared one. All app processes share the keys and the table, as the
 * instances of a scaled-out app do; the first one's origin is the app's public origin.
 */
export class Cluster {
  readonly emulator: EntraEmulator;
  api: TodoListApi;
  readonly apps: AppProcess[];
  azurite: Azurite | undefined;
  readonly settings: Record<string, string>;
  readonly connectionString: string;
  readonly origin: string;
  /** The output of app processes that were stopped or killed, so a test can still search it. */
  private readonly pastOutput: string[] = [];
  private readonly ports: number[];
  private readonly apiPort: number;
  private readonly location: string | undefined;
  private readonly options: ClusterOptions;

  private constructor(init: {
    emulator: EntraEmulator;
    api: TodoListApi;
    apps: AppProcess[];
    azurite: Azurite | undefined;
    settings: Record<string, string>;
    connectionString: string;
    ports: number[];
    apiPort: number;
    location: string | undefined;
    options: ClusterOptions;
  }) {
    this.emulator = init.emulator;
    this.api = init.api;
    this.apps = init.apps;
    this.azurite = init.azurite;
    this.settings = init.settings;
    this.connectionString = init.connectionString;
    this.ports = init.ports;
    this.apiPort = init.apiPort;
    this.location = init.location;
    this.options = init.options;
    this.origin = `http://localhost:${init.ports[0]}`;
  }

  static async start(options: ClusterOptions): Promise<Cluster> {
    const stack = testStack();
    const count = options.apps ?? 1;
    const ports = await Promise.all(Array.from({ length: count }, () => findFreePort()));
    const origin = `http://localhost:${ports[0]}`;
    const clientSecret = randomBytes(24).toString('base64url');
    const stops: (() => Promise<unknown>)[] = [];
    try {
      const emulator = await startEntraEmulator({
        certDir: dirname(stack.emulator.caCertPath),
        clients: [webAppClient(origin, clientSecret)],
        api: { clientId: DEV_IDENTITIES.apiClientId },
        users: [...options.users],
        ...(options.lifetimes === undefined ? {} : { lifetimes: options.lifetimes }),
      });
      stops.push(() => emulator.close());
      const apiPort = await findFreePort();
      const api = await startTodoListApi({
        issuer: emulator.issuer,
        jwksUri: emulator.jwksUri,
        audience: DEV_IDENTITIES.apiClientId,
        caCertPem: emulator.caCertPem,
        port: apiPort,
      });
      stops.push(() => api.close());

      const storage = options.storage ?? { kind: 'own' };
      let azurite: Azurite | undefined;
      let location: string | undefined;
      let connectionString: string;
      if (storage.kind === 'own') {
        location = storage.persistent
          ? await mkdtemp(join(tmpdir(), 'resilience-azurite-'))
          : undefined;
        azurite = await startAzurite(location === undefined ? {} : { location });
        stops.push(() => azurite?.stop() ?? Promise.resolve());
        connectionString = azurite.connectionString;
      } else {
        connectionString = storage.connectionString;
      }
      const settings = appSettings({
        appOrigin: origin,
        authority: emulator.authority,
        clientSecret,
        todoListEndpoint: api.endpoint,
        tokenCacheStorage: connectionString,
        sessionKeys: randomBytes(32).toString('base64'),
        tokenCacheKeys: randomBytes(32).toString('base64'),
        tokenCacheTable: `resilience${randomBytes(4).toString('hex')}`,
      });
      const cluster = new Cluster({
        emulator,
        api,
        apps: [],
        azurite,
        settings,
        connectionString,
        ports,
        apiPort,
        location,
        options,
      });
      stops.length = 0;
      try {
        for (let index = 0; index < count; index += 1) {
          cluster.apps.push(await cluster.launch(index));
        }
      } catch (error) {
        await cluster.stop();
        throw error;
      }
      return cluster;
    } catch (error) {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      throw error;
    }
  }

  /** The settings app process `index` runs with. */
  envFor(index: number): Record<string, string> {
    return {
      ...this.settings,
      ...(this.options.connectionStringFor === undefined
        ? {}
        : { TOKEN_CACHE_STORAGE: this.options.connectionStringFor(index, this.connectionString) }),
      ...this.options.appEnv,
      NODE_EXTRA_CA_CERTS: testStack().emulator.caCertPath,
    };
  }

  private launch(index: number): Promise<AppProcess> {
    return startAppProcess({ port: this.ports[index] ?? 0, env: this.envFor(index) });
  }

  /** Starts app process `index` again on its port (after a stop or a kill). */
  async restartApp(index: number): Promise<AppProcess> {
    const old = this.apps[index];
    if (old !== undefined) {
      await old.stop();
      this.pastOutput.push(old.output());
    }
    const started = await this.launch(index);
    this.apps[index] = started;
    return started;
  }

  /** Kills app process `index` with SIGKILL: no clean-up, no flush, as a crash or an OOM kill. */
  async killApp(index: number): Promise<void> {
    await this.apps[index]?.stop('SIGKILL');
  }

  /** Everything every app process of this cluster wrote, stopped ones included. */
  output(): string {
    return [...this.pastOutput, ...this.apps.map((app) => app.output())].join('\n');
  }

  /** Stops Azurite (it must be the cluster's own) and starts it again on the same port. */
  async stopAzurite(): Promise<number> {
    if (this.azurite === undefined) throw new Error('the cluster uses a shared Azurite');
    const port = this.azurite.tablePort;
    await this.azurite.stop();
    return port;
  }

  /**
   * Resolves once the cluster's on-disk Azurite has saved every user's session and token rows.
   * Azurite saves its database every 5 s and only on SIGINT when stopping (dev/azurite.mts stops
   * it with SIGTERM), so a test that stops it waits for the save first: an Azure Storage outage
   * loses no data, and neither should this stand-in for one.
   */
  async untilPersisted(users: readonly TestUser[]): Promise<void> {
    if (this.location === undefined) throw new Error('the cluster has no on-disk Azurite');
    const file = join(this.location, '__azurite_db_table__.json');
    const expected = users.flatMap((user) => {
      const partition = `"PartitionKey":"${this.homeAccountId(user)}","RowKey":`;
      return [`${partition}"session.`, `${partition}"${TOKEN_CACHE_ROW_KEY}"`];
    });
    const started = performance.now();
    for (;;) {
      const saved = await readFile(file, 'utf8').catch(() => '');
      if (expected.every((text) => saved.includes(text))) return;
      if (performance.now() - started > 30_000) throw new Error('Azurite did not save its data');
      await delay(100);
    }
  }

  async startAzurite(port: number): Promise<Azurite> {
    this.azurite = await startAzurite({
      tablePort: port,
      ...(this.location === undefined ? {} : { location: this.location }),
    });
    return this.azurite;
  }

  /** Stops the sample API and starts it again on the same port. */
  async restartApi(): Promise<void> {
    await this.api.close();
    this.api = await startTodoListApi({
      issuer: this.emulator.issuer,
      jwksUri: this.emulator.jwksUri,
      audience: DEV_IDENTITIES.apiClientId,
      caCertPem: this.emulator.caCertPem,
      port: this.apiPort,
    });
  }

  homeAccountId(user: TestUser): string {
    return `${user.oid}.${this.emulator.tenantId}`;
  }

  /** The token table as the app reads it (dist/), for checking rows after the fact. */
  tokenStore(): TokenCacheStore {
    return tokenStoreOn(
      this.connectionString,
      this.settings.TOKEN_CACHE_TABLE ?? '',
      this.settings.TOKEN_CACHE_KEYS ?? '',
    );
  }

  /** The raw token table. */
  table(): TableClient {
    return TableClient.fromConnectionString(
      this.connectionString,
      this.settings.TOKEN_CACHE_TABLE ?? '',
      { allowInsecureConnection: true },
    );
  }

  /** The row keys of a user's partition (token cache and sessions). */
  async rowKeysOf(user: TestUser): Promise<string[]> {
    const keys: string[] = [];
    for await (const row of this.table().listEntities({
      queryOptions: { filter: `PartitionKey eq '${this.homeAccountId(user)}'`, select: ['RowKey'] },
    })) {
      keys.push(row.rowKey ?? '');
    }
    return keys.sort();
  }

  /** Signs a user in through app process 0 (consent is tenant-wide: writes need nothing more). */
  async signIn(user: TestUser, agent: UserAgent = new UserAgent()): Promise<Caller> {
    const caller = new Caller(this, user, agent);
    await signInThroughApp(caller.agent, this.origin, user.preferred_username);
    expect(caller.cookieValue, `no session for ${user.preferred_username}`).not.toBe('');
    return caller;
  }

  async stop(): Promise<void> {
    const steps: (() => Promise<unknown>)[] = [
      ...this.apps.map((app) => () => app.stop()),
      () => this.api.close(),
      () => this.emulator.close(),
      () => this.azurite?.stop() ?? Promise.resolve(),
      () =>
        this.location === undefined
          ? Promise.resolve()
          : rm(this.location, { recursive: true, force: true }),
    ];
    for (const step of steps) await step().catch(() => undefined);
  }
}

/** A signed-in user of a cluster, calling any of its app processes as the app's page would. */
export class Caller {
  readonly user: TestUser;
  readonly agent: UserAgent;
  private readonly cluster: Cluster;

  constructor(cluster: Cluster, user: TestUser, agent: UserAgent = new UserAgent()) {
    this.cluster = cluster;
    this.user = user;
    this.agent = agent;
  }

  get cookieValue(): string {
    return this.agent.cookies(this.cluster.origin).get(SESSION_COOKIE) ?? '';
  }

  /** A call to app process `app` (0 by default) with the session, X-CSRF and the app's origin. */
  call(
    method: string,
    path: string,
    options: {
      app?: number;
      body?: unknown;
      headers?: Record<string, string>;
      timeoutMs?: number;
    } = {},
  ): Promise<RawAnswer> {
    const target = this.cluster.apps[options.app ?? 0];
    if (target === undefined) throw new Error(`no app process ${options.app}`);
    const json = options.body === undefined ? undefined : JSON.stringify(options.body);
    return rawRequest(target.origin, {
      method,
      path,
      headers: {
        cookie: `${SESSION_COOKIE}=${this.cookieValue}`,
        'x-csrf': '1',
        origin: this.cluster.origin,
        'sec-fetch-site': 'same-origin',
        ...(json === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      ...(json === undefined ? {} : { body: json }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  }
}

/** Seconds and milliseconds for reports. */
export function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

export async function expectProcessAlive(app: AppProcess): Promise<void> {
  expect(app.pid).toBeGreaterThan(0);
  expect(() => process.kill(app.pid, 0), `app process ${app.pid} has exited`).not.toThrow();
  const health = await rawRequest(app.origin, { path: '/health' });
  expect([200, 503]).toContain(health.status);
}

/** Lines of an app's output that show a crash or a failure of our own code. */
export function crashLines(output: string): string[] {
  return output
    .split('\n')
    .filter((line) =>
      /Unhandled|uncaught|Executed '[^']+' \(Failed|failed to serve|unexpected failure/i.test(line),
    );
}
