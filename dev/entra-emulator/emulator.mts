import { generateKeyPair, randomBytes, randomUUID, type JsonWebKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Middleware } from 'oidc-provider';
import { adminApi } from './admin-api.mts';
import { adminConsentGate } from './authorize-consent.mts';
import { loadOrCreateTlsMaterial, type TlsMaterial } from './certificate.mts';
import { FaultInjector, type Fault } from './faults.mts';
import { entraLogout } from './logout.mts';
import { MemoryStore } from './memory-store.mts';
import {
  certificateThumbprint,
  createEntraProvider,
  entraPaths,
  type ApiRegistration,
  type ClientRegistration,
  type Lifetimes,
} from './provider.mts';
import { signInRoutes } from './sign-in.mts';
import { entraTokenEndpoint } from './token-endpoint.mts';
import {
  defaultTestUsers,
  UserDirectory,
  type EmulatorUser,
  type TestUser,
  type UserProfile,
} from './users.mts';

export type {
  ApiRegistration,
  ClientRegistration,
  EmulatorUser,
  Fault,
  Lifetimes,
  TestUser,
  UserProfile,
};

export interface EntraEmulatorOptions {
  /** Loopback address or name to listen on; '127.0.0.1' by default. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  tenantId?: string;
  clients?: ClientRegistration[];
  api?: Partial<ApiRegistration> & { clientId: string };
  /** More APIs, each with its own client id (the audience of its tokens), App ID URI and scopes. */
  otherApis?: ApiRegistration[];
  /** Test users; any optional claim may be left out (see UserProfile). */
  users?: readonly UserProfile[];
  lifetimes?: Partial<Lifetimes>;
  /** Keeps the CA and server certificate here and reuses them; a fresh temporary one otherwise. */
  certDir?: string;
  /**
   * Keeps the signing key, the cookie keys and oidc-provider's store (grants, sessions, refresh
   * tokens) here, so a restart signs no one out and tokens issued before it still verify. Without
   * it they are made at start and live in memory only.
   */
  stateDir?: string;
}

/** Requests seen per endpoint; token requests per grant type. */
export interface RequestCounts {
  discovery: number;
  authorize: number;
  token: Record<string, number>;
  jwks: number;
  logout: number;
}

export interface EntraEmulator {
  /** e.g. https://127.0.0.1:7443 */
  readonly origin: string;
  readonly tenantId: string;
  /** What MSAL takes as `authority`, with `knownAuthorities: [new URL(origin).host]`. */
  readonly authority: string;
  readonly issuer: string;
  readonly jwksUri: string;
  readonly caCertPem: string;
  /** A file to trust the emulator with, e.g. as NODE_EXTRA_CA_CERTS. */
  readonly caCertPath: string;
  readonly clients: readonly ClientRegistration[];
  readonly api: Readonly<ApiRegistration>;
  readonly users: readonly EmulatorUser[];
  counters(): RequestCounts;
  resetCounters(): void;
  /** Activates a fault, replacing an active one of the same kind. */
  setFault(fault: Fault): void;
  clearFaults(): void;
  /** Token requests a `hang` fault holds unanswered right now. */
  pendingTokenRequests(): number;
  setLifetimes(lifetimes: Partial<Lifetimes>): Lifetimes;
  /** Revokes every grant of a user, with its refresh and access tokens; returns how many. */
  revokeUserGrants(oid: string): number;
  close(): Promise<void>;
}

/** Stable identifiers, so that a local.settings.json written once keeps working. */
export const emulatorDefaults = {
  tenantId: '0b5c7a7e-3d41-4f6e-9a2c-5d8e1f0a7b3c',
  client: {
    clientId: '1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b',
    clientSecret: 'local-emulator-secret',
    // The app's POST_LOGOUT_REDIRECT_URI is a registered redirect URI, as Entra requires.
    redirectUris: ['http://localhost:7071/auth/redirect', 'http://localhost:7071/'],
  },
  api: {
    clientId: '6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d',
    scopes: ['ToDoList.Read', 'ToDoList.ReadWrite'],
  },
  lifetimes: {
    accessTokenSeconds: 3600,
    idTokenSeconds: 3600,
    refreshTokenSeconds: 90 * 24 * 60 * 60,
    oneTimePasscodeRefreshTokenSeconds: 24 * 60 * 60,
  },
} as const;

/** Starts a local HTTPS OpenID Provider that answers as Microsoft Entra External ID. */
export async function startEntraEmulator(
  options: EntraEmulatorOptions = {},
): Promise<EntraEmulator> {
  const host = options.host ?? '127.0.0.1';
  const tenantId = options.tenantId ?? emulatorDefaults.tenantId;
  const registered: readonly ClientRegistration[] = options.clients ?? [
    { ...emulatorDefaults.client, redirectUris: [...emulatorDefaults.client.redirectUris] },
  ];
  const clients: ClientRegistration[] = registered.map((client) => ({
    clientId: client.clientId,
    ...(client.certificatePem === undefined
      ? { clientSecret: client.clientSecret }
      : { certificatePem: client.certificatePem }),
    redirectUris: [...client.redirectUris],
  }));
  const apiClientId = options.api?.clientId ?? emulatorDefaults.api.clientId;
  const api: ApiRegistration = {
    clientId: apiClientId,
    appIdUri: options.api?.appIdUri ?? `api://${apiClientId}`,
    scopes: [...(options.api?.scopes ?? emulatorDefaults.api.scopes)],
  };
  const otherApis = (options.otherApis ?? []).map((other) => ({
    ...other,
    scopes: [...other.scopes],
  }));
  const users = new UserDirectory(options.users ?? defaultTestUsers, tenantId);
  const lifetimes: Lifetimes = { ...emulatorDefaults.lifetimes };
  const setLifetimes = (changes: Partial<Lifetimes>): Lifetimes => {
    for (const [name, value] of Object.entries(changes)) {
      if (!(name in lifetimes)) throw new TypeError(`unknown lifetime ${name}`);
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
        throw new TypeError(`${name} must be a whole number of seconds, at least 1`);
      }
    }
    Object.assign(lifetimes, changes);
    return { ...lifetimes };
  };
  setLifetimes(options.lifetimes ?? {});

  const ownsCertDir = options.certDir === undefined;
  const certDir = options.certDir ?? (await mkdtemp(join(tmpdir(), 'entra-emulator-')));
  const removeOwnCertDir = async () => {
    if (ownsCertDir) await rm(certDir, { recursive: true, force: true });
  };

  const server = createServer();
  let tls: TlsMaterial;
  let keys: EmulatorKeys;
  try {
    tls = await loadOrCreateTlsMaterial(certDir, [
      ...new Set(['localhost', '127.0.0.1', '::1', host]),
    ]);
    server.setSecureContext({ cert: tls.certPem, key: tls.keyPem });
    keys = await loadOrCreateKeys(options.stateDir);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await removeOwnCertDir();
    throw error;
  }

  const { port } = server.address() as AddressInfo;
  const origin = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  const issuer = `${origin}/${tenantId}/v2.0`;
  const paths = entraPaths(tenantId);
  const store = new MemoryStore(
    options.stateDir === undefined ? {} : { file: join(options.stateDir, 'store.json') },
  );
  const faults = new FaultInjector();
  let counts = emptyCounts();
  // When each user's latest refresh token expires, so a test can see a lifetime without waiting.
  const refreshTokenExpiry = new Map<string, number>();

  const provider = createEntraProvider({
    issuer,
    tenantId,
    clients,
    api,
    otherApis,
    users,
    lifetimes,
    store,
    signingKey: keys.signingKey,
    cookieKeys: keys.cookieKeys,
  });
  provider.on('refresh_token.saved', (token) => {
    // A token saved for the first time has no exp yet: its lifetime is `expiration` from now.
    const exp = token.exp ?? Math.floor(Date.now() / 1000) + (token.expiration ?? 0);
    if (token.accountId !== undefined) refreshTokenExpiry.set(token.accountId, exp);
  });
  provider.on('server_error', (ctx, error) => {
    console.error(`entra-emulator: internal error answering ${ctx.method} ${ctx.path}`, error);
  });

  const revokeUserGrants = (oid: string): number | undefined => {
    const user = users.byOid(oid);
    if (!user) return undefined;
    const grants = store.grantsOf(user.sub);
    for (const grant of grants) store.revokeGrant(grant.grantId);
    return grants.length;
  };

  const countRequests: Middleware = async (ctx, next) => {
    const endpoint = (Object.keys(paths) as (keyof typeof paths)[]).find(
      (name) => paths[name] === ctx.path,
    );
    await next();
    if (endpoint === 'token') {
      // The token endpoint's wrapper names the grant even when a fault answered for the library.
      const grantType =
        (ctx.state.grantType as string | undefined) ?? ctx.oidc?.params?.grant_type ?? 'unknown';
      counts.token[grantType] = (counts.token[grantType] ?? 0) + 1;
    } else if (endpoint !== undefined && endpoint !== 'signIn' && ctx.method === 'GET') {
      counts[endpoint] += 1;
    }
  };

  // oidc-provider serves discovery at its mount point's /.well-known; Entra under /<tenant>/v2.0.
  const entraDiscoveryPath: Middleware = async (ctx, next) => {
    if (ctx.path === paths.discovery) ctx.path = '/.well-known/openid-configuration';
    else if (ctx.path.startsWith('/.well-known/')) return;
    await next();
  };

  provider.use(countRequests);
  provider.use(entraDiscoveryPath);
  provider.use(
    adminApi({
      counters: () => structuredClone(counts),
      resetCounters: () => {
        counts = emptyCounts();
      },
      setFault: (fault) => faults.set(fault),
      clearFaults: () => faults.clear(),
      setLifetimes,
      revokeUserGrants,
      users: () =>
        users.users.map((user) => ({
          ...user,
          ...(refreshTokenExpiry.has(user.sub) && {
            refreshTokenExpiresAt: new Date(
              (refreshTokenExpiry.get(user.sub) ?? 0) * 1000,
            ).toISOString(),
          }),
          grants: store
            .grantsOf(user.sub)
            .map(({ clientId, resources }) => ({ clientId, apiScopes: resources })),
        })),
    }),
  );
  provider.use(adminConsentGate({ path: paths.authorize, clients, users, faults }));
  provider.use(
    entraTokenEndpoint({
      path: paths.token,
      tenantId,
      provider,
      users,
      faults,
      apiScopes: new Set(
        [api, ...otherApis].flatMap(({ appIdUri, scopes }) =>
          scopes.map((scope) => `${appIdUri}/${scope}`),
        ),
      ),
      tokenEndpoint: `${origin}${paths.token}`,
      certificates: new Map(
        clients.flatMap((client) =>
          client.certificatePem === undefined
            ? []
            : [[client.clientId, new Set([certificateThumbprint(client.certificatePem)])]],
        ),
      ),
    }),
  );
  provider.use(signInRoutes({ basePath: paths.signIn, provider, users }));
  provider.use(
    entraLogout({
      path: paths.logout,
      provider,
      redirectUris: clients.flatMap((client) => client.redirectUris),
    }),
  );

  const handle = provider.callback();
  server.on('request', (req, res) => void handle(req, res));

  return {
    origin,
    tenantId,
    authority: `${origin}/${tenantId}/`,
    issuer,
    jwksUri: `${origin}${paths.jwks}`,
    caCertPem: tls.caCertPem,
    caCertPath: tls.caCertPath,
    clients,
    api,
    users: users.users,
    counters: () => structuredClone(counts),
    resetCounters: () => {
      counts = emptyCounts();
    },
    setFault: (fault) => faults.set(fault),
    clearFaults: () => faults.clear(),
    pendingTokenRequests: () => faults.held,
    setLifetimes,
    revokeUserGrants: (oid) => {
      const revoked = revokeUserGrants(oid);
      if (revoked === undefined) throw new TypeError(`no test user has oid ${oid}`);
      return revoked;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Requests a hang fault holds go on (to closed sockets), so nothing is left pending.
      faults.clear();
      server.closeAllConnections();
      await closed;
      store.flush();
      await removeOwnCertDir();
    },
  };
}

interface EmulatorKeys {
  signingKey: JsonWebKey;
  cookieKeys: string[];
}

async function createKeys(): Promise<EmulatorKeys> {
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  return {
    signingKey: {
      ...privateKey.export({ format: 'jwk' }),
      kid: randomUUID(),
      alg: 'RS256',
      use: 'sig',
    },
    cookieKeys: [randomBytes(32).toString('base64url')],
  };
}

/** The keys kept in `stateDir/keys.json` (readable by the owner only), or new ones. */
async function loadOrCreateKeys(stateDir: string | undefined): Promise<EmulatorKeys> {
  if (stateDir === undefined) return createKeys();
  const file = join(stateDir, 'keys.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as EmulatorKeys;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const keys = await createKeys();
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFile(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

function emptyCounts(): RequestCounts {
  return {
    discovery: 0,
    authorize: 0,
    token: { authorization_code: 0, refresh_token: 0 },
    jwks: 0,
    logout: 0,
  };
}
