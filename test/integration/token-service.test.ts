import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { CryptoProvider } from '@azure/msal-node';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { startAzurite } from '../../dev/azurite.mts';
import { startEntraEmulator, type EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import { createAppServices, type AppServices } from '../../src/lib/app-services.ts';
import { loadConfig } from '../../src/lib/config.ts';
import {
  SignInRequiredError,
  TokenStoreUnavailableError,
  IdpUnavailableError,
} from '../../src/lib/errors.ts';
import { KeyRing } from '../../src/lib/tokens/key-ring.ts';
import { TOKEN_CACHE_ROW_KEY, TokenCacheStore } from '../../src/lib/tokens/token-cache-store.ts';
import type { TokenService } from '../../src/lib/tokens/token-service.ts';
import { testStack } from '../support/stack.ts';
import { RequestCounter, uniqueTableName } from '../support/table-storage.ts';
import { UserAgent } from '../support/user-agent.ts';

const stack = testStack();
const connectionString = inject('azuriteConnectionString');
const clientId = 'c0ffee00-0000-4000-8000-00000000a001';
const clientSecret = randomBytes(18).toString('base64url');
const apiClientId = 'c0ffee00-0000-4000-8000-00000000a002';
const redirectUri = 'http://localhost:7999/auth/redirect';
const readScope = `api://${apiClientId}/ToDoList.Read`;
const writeScope = `api://${apiClientId}/ToDoList.ReadWrite`;
const users = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => ({
  oid: `0000000${n}-aaaa-4bbb-8ccc-${randomBytes(6).toString('hex')}`,
  name: `User ${n}`,
  preferred_username: `user${n}@tokens.example`,
}));

// A private emulator (sharing the run's trusted certificate), so its counters and faults belong
// to this file alone.
let emulator: EntraEmulator;

function settings(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    AUTHORITY: emulator.authority,
    CLIENT_ID: clientId,
    CLIENT_SECRET: clientSecret,
    REDIRECT_URI: redirectUri,
    POST_LOGOUT_REDIRECT_URI: 'http://localhost:7999/',
    TODOLIST_ENDPOINT: stack.api.endpoint,
    TODOLIST_READ: readScope,
    TODOLIST_READWRITE: writeScope,
    TOKEN_CACHE_STORAGE: connectionString,
    TOKEN_CACHE_TABLE: tableName,
    TOKEN_CACHE_KEYS: tokenKey,
    SESSION_KEYS: randomBytes(32).toString('base64'),
    ...overrides,
  };
}

const tableName = uniqueTableName('tokens');
const tokenKey = randomBytes(32).toString('base64');
let services: AppServices;
let counter: RequestCounter;

function servicesWith(overrides: Record<string, string> = {}): AppServices {
  return createAppServices(loadConfig(settings(overrides)), { warn: () => undefined });
}

/** Signs a user in the way the redirect function will: PKCE, state, nonce, code redemption. */
async function signIn(service: TokenService, user: (typeof users)[number]) {
  const crypto = new CryptoProvider();
  const { verifier, challenge } = await crypto.generatePkceCodes();
  const state = crypto.createNewGuid();
  const nonce = crypto.createNewGuid();
  const scopes = ['openid', 'profile', 'offline_access', readScope];
  const url = await service.authCodeUrl({
    scopes,
    redirectUri,
    state,
    nonce,
    codeChallenge: challenge,
    loginHint: user.preferred_username,
  });
  const { location } = await new UserAgent().navigate(url, (target) =>
    target.startsWith(redirectUri),
  );
  const code = new URL(location ?? '').searchParams.get('code') ?? '';
  return service.redeemCode({ code, codeVerifier: verifier, scopes, redirectUri, state, nonce });
}

async function rawRow(partitionKey: string) {
  return services.tokenTable.client.getEntity<Record<string, unknown>>(
    partitionKey,
    TOKEN_CACHE_ROW_KEY,
  );
}

/** Makes every access token in the user's cache expired, as time would. */
async function expireAccessTokens(partitionKey: string): Promise<void> {
  const store = new TokenCacheStore(
    services.tokenTable,
    new KeyRing([Buffer.from(tokenKey, 'base64')]),
  );
  const row = await store.read(partitionKey);
  const cache = JSON.parse(row?.serialized ?? '{}') as {
    AccessToken: Record<string, { expires_on: string; extended_expires_on: string }>;
  };
  const past = String(Math.floor(Date.now() / 1000) - 600);
  for (const token of Object.values(cache.AccessToken)) {
    token.expires_on = past;
    token.extended_expires_on = past;
  }
  await store.write(partitionKey, JSON.stringify(cache), row?.etag);
}

beforeAll(async () => {
  emulator = await startEntraEmulator({
    certDir: dirname(stack.emulator.caCertPath),
    clients: [{ clientId, clientSecret, redirectUris: [redirectUri] }],
    api: { clientId: apiClientId },
    users,
  });
  services = servicesWith();
  counter = new RequestCounter();
  services.tokenTable.client.pipeline.addPolicy(counter.policy);
  await services.authorityMetadata.get();
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.clearFaults();
});

describe('TokenService with real MSAL, the emulator and Azurite', () => {
  it('sign-in writes exactly one row; a valid token is served with 1 read, 0 writes, 0 IdP calls', async () => {
    const user = users[0]!;
    await services.tokenTable.ensureExists();
    counter.reset();
    const signedIn = await signIn(services.tokenService, user);
    expect(signedIn).toMatchObject({
      homeAccountId: `${user.oid}.${emulator.tenantId}`,
      name: user.name,
      username: user.preferred_username,
    });
    expect(counter.writes).toBe(1);
    const rows = [];
    for await (const row of services.tokenTable.client.listEntities({
      queryOptions: { filter: `PartitionKey eq '${signedIn.homeAccountId}'` },
    })) {
      rows.push(row);
    }
    expect(rows).toHaveLength(1);

    counter.reset();
    emulator.resetCounters();
    const token = await services.tokenService.acquireToken(signedIn.homeAccountId, [readScope]);
    expect(token.accessToken.split('.')).toHaveLength(3);
    expect(counter.reads).toBe(1);
    expect(counter.writes).toBe(0);
    expect(emulator.counters()).toMatchObject({
      discovery: 0,
      token: { authorization_code: 0, refresh_token: 0 },
    });
  });

  it('serves a session and a valid token with one Table round trip in all', async () => {
    const signedIn = await signIn(services.tokenService, users[0]!);
    const { cookieValue } = await services.sessions.create(signedIn);
    counter.reset();
    emulator.resetCounters();
    const session = await services.sessions.resolve(cookieValue, { withTokenCache: true });
    expect(session?.tokenCacheRow).toBeTruthy();
    const token = await services.tokenService.acquireToken(signedIn.homeAccountId, [readScope], {
      tokenCacheRow: session?.tokenCacheRow ?? null,
    });
    expect(token.accessToken).toBeTruthy();
    expect(counter.reads).toBe(1);
    expect(counter.writes).toBe(0);
    expect(emulator.counters().token).toEqual({ authorization_code: 0, refresh_token: 0 });
  });

  it('an expired token makes exactly 1 token call and 1 conditional write', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[1]!);
    await expireAccessTokens(homeAccountId);
    const etagBefore = (await rawRow(homeAccountId)).etag;
    counter.reset();
    emulator.resetCounters();
    await services.tokenService.acquireToken(homeAccountId, [readScope]);
    expect(emulator.counters().token).toEqual({ authorization_code: 0, refresh_token: 1 });
    expect(counter.reads).toBe(1);
    expect(counter.counts.PUT).toBe(1);
    expect(counter.writes).toBe(1);
    expect((await rawRow(homeAccountId)).etag).not.toBe(etagBefore);
  });

  it('50 concurrent requests for one user in one process make one refresh', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[2]!);
    await expireAccessTokens(homeAccountId);
    emulator.resetCounters();
    const tokens = await Promise.all(
      Array.from({ length: 50 }, () =>
        services.tokenService.acquireToken(homeAccountId, [readScope]),
      ),
    );
    expect(new Set(tokens.map((token) => token.accessToken)).size).toBe(1);
    expect(emulator.counters().token.refresh_token).toBe(1);
  });

  it('two processes refreshing one user at once both succeed and lose no refresh token', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[3]!);
    emulator.resetCounters();
    const workers = [0, 1].map(() => {
      const child = spawn(
        process.execPath,
        [
          'test/support/refresh-process.mts',
          JSON.stringify({ env: settings(), homeAccountId, scopes: [readScope] }),
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const lines = createInterface({ input: child.stdout });
      const next = () =>
        new Promise<string>((resolve, reject) => {
          const onLine = (line: string) => {
            if (!line.startsWith('worker:')) return;
            lines.off('line', onLine);
            resolve(line.slice('worker:'.length));
          };
          lines.on('line', onLine);
          child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
        });
      return { child, next };
    });
    await Promise.all(workers.map(async (worker) => expect(await worker.next()).toBe('ready')));
    const outcomes = workers.map((worker) => worker.next());
    for (const worker of workers) worker.child.stdin.write('go\n');
    const results = (await Promise.all(outcomes)).map(
      (line) => JSON.parse(line) as { ok: boolean },
    );
    expect(results).toEqual([
      expect.objectContaining({ ok: true }),
      expect.objectContaining({ ok: true }),
    ]);
    expect(emulator.counters().token.refresh_token).toBe(2);

    // The merged row opens, serves the next call, and its refresh token still works.
    const fresh = servicesWith();
    await expect(fresh.tokenService.acquireToken(homeAccountId, [readScope])).resolves.toBeTruthy();
    emulator.resetCounters();
    await fresh.tokenService.acquireToken(homeAccountId, [readScope], { forceRefresh: true });
    expect(emulator.counters().token.refresh_token).toBe(1);
  });

  it('keeps no substring of any token in the raw row', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[4]!);
    const store = new TokenCacheStore(
      services.tokenTable,
      new KeyRing([Buffer.from(tokenKey, 'base64')]),
    );
    const cache = JSON.parse((await store.read(homeAccountId))?.serialized ?? '{}') as Record<
      string,
      Record<string, { secret?: string }>
    >;
    const secrets = ['AccessToken', 'RefreshToken', 'IdToken'].flatMap((section) =>
      Object.values(cache[section] ?? {}).map((entry) => entry.secret ?? ''),
    );
    expect(secrets).toHaveLength(3);
    const row = await rawRow(homeAccountId);
    const rawText = Object.values(row)
      .map((value) =>
        value instanceof Uint8Array ? Buffer.from(value).toString('latin1') : JSON.stringify(value),
      )
      .join('|');
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(20);
      // Any 16-character window of a token would show a leak of part of it.
      for (let start = 0; start + 16 <= secret.length; start += 16) {
        expect(rawText).not.toContain(secret.slice(start, start + 16));
      }
    }
  });

  it('reads rows sealed with a retired key after rotation, and seals new writes with the new key', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[5]!);
    await expireAccessTokens(homeAccountId);
    const newKey = randomBytes(32).toString('base64');
    const rotated = servicesWith({ TOKEN_CACHE_KEYS: `${newKey},${tokenKey}` });
    await expect(
      rotated.tokenService.acquireToken(homeAccountId, [readScope]),
    ).resolves.toBeTruthy();
    const onlyNew = new TokenCacheStore(
      services.tokenTable,
      new KeyRing([Buffer.from(newKey, 'base64')]),
    );
    await expect(onlyNew.read(homeAccountId)).resolves.toBeDefined();
  });

  it('a row copied into another user partition, a corrupted row and a wrong key mean "signed out"', async () => {
    const victim = await signIn(services.tokenService, users[6]!);
    const row = await rawRow(victim.homeAccountId);
    const { partitionKey: _p, rowKey: _r, etag: _e, timestamp: _t, ...properties } = row;
    const intruder = `ffffffff-0000-4000-8000-000000000000.${emulator.tenantId}`;
    await services.tokenTable.client.upsertEntity(
      { ...properties, partitionKey: intruder, rowKey: TOKEN_CACHE_ROW_KEY },
      'Replace',
    );
    const copied = await services.tokenService
      .acquireToken(intruder, [readScope])
      .catch((e: unknown) => e);
    expect(copied).toBeInstanceOf(SignInRequiredError);
    expect((copied as SignInRequiredError).reason).toBe('unreadable_cache');
    await expect(rawRow(intruder)).rejects.toMatchObject({ statusCode: 404 });

    const wrongKey = servicesWith({ TOKEN_CACHE_KEYS: randomBytes(32).toString('base64') });
    await expect(
      wrongKey.tokenService.acquireToken(victim.homeAccountId, [readScope]),
    ).rejects.toThrow(SignInRequiredError);

    const other = await signIn(services.tokenService, users[7]!);
    const sealed = Buffer.from((await rawRow(other.homeAccountId)).D0 as Uint8Array);
    sealed[sealed.length - 1] = (sealed[sealed.length - 1] ?? 0) ^ 0xff;
    await services.tokenTable.client.updateEntity(
      { partitionKey: other.homeAccountId, rowKey: TOKEN_CACHE_ROW_KEY, D0: sealed },
      'Merge',
    );
    await expect(
      services.tokenService.acquireToken(other.homeAccountId, [readScope]),
    ).rejects.toThrow(SignInRequiredError);
  });

  it('a refresh the IdP rejects means sign-in required and deletes the row', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[0]!);
    emulator.setFault({ kind: 'refresh_invalid_grant', oid: users[0]!.oid });
    const error = await services.tokenService
      .acquireToken(homeAccountId, [readScope], { forceRefresh: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignInRequiredError);
    expect((error as SignInRequiredError).reason).toBe('refresh_rejected');
    await expect(rawRow(homeAccountId)).rejects.toMatchObject({ statusCode: 404 });
  });

  it('a plain invalid_grant is treated the same way', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[1]!);
    emulator.setFault({ kind: 'refresh_invalid_grant_plain', oid: users[1]!.oid });
    await expect(
      services.tokenService.acquireToken(homeAccountId, [readScope], { forceRefresh: true }),
    ).rejects.toThrow(SignInRequiredError);
    await expect(rawRow(homeAccountId)).rejects.toMatchObject({ statusCode: 404 });
  });

  it('the IdP answering 5xx is transient: the row stays and the next request works', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[2]!);
    const etag = (await rawRow(homeAccountId)).etag;
    emulator.setFault({ kind: 'token_5xx', oid: users[2]!.oid, count: 1 });
    await expect(
      services.tokenService.acquireToken(homeAccountId, [readScope], { forceRefresh: true }),
    ).rejects.toThrow(IdpUnavailableError);
    expect((await rawRow(homeAccountId)).etag).toBe(etag);
    // A new client object per request: MSAL's throttling of the failed one does not replay.
    await expect(
      services.tokenService.acquireToken(homeAccountId, [readScope], { forceRefresh: true }),
    ).resolves.toBeTruthy();
  });

  it("the IdP's Retry-After holds that user's token requests back, and no one else's", async () => {
    const held = await signIn(services.tokenService, users[8]!);
    const free = await signIn(services.tokenService, users[9]!);
    emulator.setFault({ kind: 'throttled', retryAfterSeconds: 120, oid: users[8]!.oid });
    const first = await services.tokenService
      .acquireToken(held.homeAccountId, [readScope], { forceRefresh: true })
      .catch((e: unknown) => e);
    expect(first).toBeInstanceOf(IdpUnavailableError);
    expect((first as IdpUnavailableError).retryAfterSeconds).toBe(120);
    const asked = emulator.counters().token.refresh_token ?? 0;
    const second = await services.tokenService
      .acquireToken(held.homeAccountId, [readScope], { forceRefresh: true })
      .catch((e: unknown) => e);
    expect(second).toBeInstanceOf(IdpUnavailableError);
    expect((second as IdpUnavailableError).retryAfterSeconds).toBeGreaterThan(100);
    expect((second as IdpUnavailableError).retryAfterSeconds).toBeLessThanOrEqual(120);
    expect(emulator.counters().token.refresh_token ?? 0).toBe(asked);
    await expect(
      services.tokenService.acquireToken(free.homeAccountId, [readScope], { forceRefresh: true }),
    ).resolves.toBeTruthy();
    expect(emulator.counters().token.refresh_token ?? 0).toBe(asked + 1);
    emulator.clearFaults();
  });

  it('a user without a row must sign in', async () => {
    const error = await services.tokenService
      .acquireToken(`${users[7]!.oid.replace(/^0/, 'e')}.${emulator.tenantId}`, [readScope])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignInRequiredError);
    expect((error as SignInRequiredError).reason).toBe('no_account');
  });

  it('removeUser deletes the row', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[3]!);
    await services.tokenService.removeUser(homeAccountId);
    await expect(rawRow(homeAccountId)).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('TokenService’s in-memory L1', () => {
  it('answers a request that read the same row again without opening it', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[4]!);
    const row = await rawRow(homeAccountId);
    const first = await services.tokenService.acquireToken(homeAccountId, [readScope], {
      tokenCacheRow: row,
    });
    // Same ETag, content that does not open: only the L1 can give a token for it.
    const garbled = { ...row, D0: new Uint8Array(64) };
    const second = await services.tokenService.acquireToken(homeAccountId, [readScope], {
      tokenCacheRow: garbled,
    });
    expect(second.accessToken).toBe(first.accessToken);
    // For a scope it holds nothing for, the row itself is opened, and does not open.
    await expect(
      services.tokenService.acquireToken(homeAccountId, [writeScope], { tokenCacheRow: garbled }),
    ).rejects.toThrow(SignInRequiredError);
  });

  it('gives up its token once another instance refreshed the row, and after a forced refresh', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[5]!);
    const first = await services.tokenService.acquireToken(homeAccountId, [readScope], {
      tokenCacheRow: await rawRow(homeAccountId),
    });
    const otherInstance = servicesWith();
    const refreshedElsewhere = await otherInstance.tokenService.acquireToken(
      homeAccountId,
      [readScope],
      { forceRefresh: true },
    );
    expect(refreshedElsewhere.accessToken).not.toBe(first.accessToken);
    const afterRefresh = await services.tokenService.acquireToken(homeAccountId, [readScope], {
      tokenCacheRow: await rawRow(homeAccountId),
    });
    expect(afterRefresh.accessToken).toBe(refreshedElsewhere.accessToken);

    emulator.resetCounters();
    const forced = await services.tokenService.acquireToken(homeAccountId, [readScope], {
      forceRefresh: true,
    });
    expect(emulator.counters().token.refresh_token).toBe(1);
    expect(forced.accessToken).not.toBe(afterRefresh.accessToken);
    const next = await services.tokenService.acquireToken(homeAccountId, [readScope], {
      tokenCacheRow: await rawRow(homeAccountId),
    });
    expect(next.accessToken).toBe(forced.accessToken);
  });

  it('never answers for a user signed out on another instance', async () => {
    const { homeAccountId } = await signIn(services.tokenService, users[6]!);
    await services.tokenService.acquireToken(homeAccountId, [readScope], {
      tokenCacheRow: await rawRow(homeAccountId),
    });
    await servicesWith().tokenService.removeUser(homeAccountId);
    await expect(
      services.tokenService.acquireToken(homeAccountId, [readScope], { tokenCacheRow: null }),
    ).rejects.toThrow(SignInRequiredError);
  });
});

describe('TokenService when Table Storage is down', () => {
  it('gives the transient TokenStoreUnavailableError', async () => {
    const azurite = await startAzurite();
    try {
      const down = servicesWith({ TOKEN_CACHE_STORAGE: azurite.connectionString });
      const { homeAccountId } = await signIn(down.tokenService, users[4]!);
      await azurite.stop();
      await expect(down.tokenService.acquireToken(homeAccountId, [readScope])).rejects.toThrow(
        TokenStoreUnavailableError,
      );
    } finally {
      await azurite.stop();
    }
  });
});
