import {
  AuthError,
  ConfidentialClientApplication,
  InteractionRequiredAuthError,
  LogLevel,
  ServerError,
  type AuthenticationResult,
  type INetworkModule,
} from '@azure/msal-node';
import type { AuthorityMetadataCache } from './authority-metadata';
import {
  ConsentRequiredError,
  IdpRejectedError,
  IdpUnavailableError,
  SignInRequiredError,
  TokenStoreUnavailableError,
} from './errors';
import { L1TokenCache } from './l1-token-cache';
import { partitionKeyOf } from './partition-key';
import { emitEvent } from './telemetry-events';
import { TableTokenCache } from './table-token-cache';
import type { StoredEntity, TokenCacheRowAsRead, TokenCacheStore } from './token-cache-store';

/** Where the token service reports what an operator should see; never given a token. */
export interface Logger {
  warn(message: string): void;
}

export interface TokenServiceOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly metadata: AuthorityMetadataCache;
  readonly store: TokenCacheStore;
  /** Replaces MSAL's fetch-based client, e.g. to trust a test CA in-process. */
  readonly networkClient?: INetworkModule;
  readonly logger?: Logger;
  /** The L1, shared with the session store so both serve from memory together. */
  readonly l1?: L1TokenCache;
}

export interface AuthCodeUrlRequest {
  readonly scopes: readonly string[];
  readonly redirectUri: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeChallenge: string;
  readonly loginHint?: string;
  readonly prompt?: string;
}

export interface RedeemCodeRequest {
  readonly code: string;
  readonly codeVerifier: string;
  readonly scopes: readonly string[];
  readonly redirectUri: string;
  readonly state: string;
  readonly nonce: string;
}

export interface SignedInUser {
  readonly homeAccountId: string;
  readonly name: string | undefined;
  readonly username: string;
  /** Entra's `login_hint` claim, for a sign-out without an account picker. */
  readonly loginHint: string | undefined;
}

export interface AcquireOptions {
  /** Skip the cached access token and redeem the refresh token. */
  readonly forceRefresh?: boolean;
  /** The user's token-cache row as the request got it with its session. */
  readonly tokenCacheRow?: TokenCacheRowAsRead;
}

export interface AccessToken {
  readonly accessToken: string;
  readonly expiresOn: Date | null;
}

const CONSENT_CODES = new Set(['consent_required', '65001']);

function silentLogger(logger: Logger | undefined) {
  return {
    logLevel: LogLevel.Warning,
    piiLoggingEnabled: false,
    loggerCallback: (_level: LogLevel, message: string, containsPii: boolean) => {
      if (!containsPii) logger?.warn(`msal: ${message}`);
    },
  };
}

/**
 * Gets tokens with MSAL on behalf of one user at a time. Every operation builds its own
 * `ConfidentialClientApplication` around that user's `TableTokenCache`: a shared instance would mix
 * users' caches and replay one user's throttled failure to others.
 */
export class TokenService {
  private readonly options: TokenServiceOptions;
  /** In-flight silent acquisitions, so concurrent requests for one user share one refresh. */
  private readonly inFlight = new Map<string, Promise<AccessToken>>();
  private readonly l1: L1TokenCache;

  constructor(options: TokenServiceOptions) {
    this.options = options;
    this.l1 = options.l1 ?? new L1TokenCache();
  }

  async authCodeUrl(request: AuthCodeUrlRequest): Promise<string> {
    const client = await this.client(undefined);
    try {
      return await client.getAuthCodeUrl({
        scopes: [...request.scopes],
        redirectUri: request.redirectUri,
        state: request.state,
        nonce: request.nonce,
        codeChallenge: request.codeChallenge,
        codeChallengeMethod: 'S256',
        responseMode: 'query',
        ...(request.loginHint === undefined ? {} : { loginHint: request.loginHint }),
        ...(request.prompt === undefined ? {} : { prompt: request.prompt }),
      });
    } catch (error) {
      throw translate(error, undefined, request.scopes);
    }
  }

  /** Redeems an authorization code and stores the user's tokens in their own row. */
  async redeemCode(request: RedeemCodeRequest): Promise<SignedInUser> {
    const cache = new TableTokenCache(this.options.store);
    const client = await this.client(cache);
    let result: AuthenticationResult;
    try {
      result = await client.acquireTokenByCode(
        {
          code: request.code,
          codeVerifier: request.codeVerifier,
          scopes: [...request.scopes],
          redirectUri: request.redirectUri,
          state: request.state,
          nonce: request.nonce,
        },
        { code: request.code, state: request.state },
      );
    } catch (error) {
      throw translate(error, cache, request.scopes);
    }
    const account = result.account;
    if (account === null) throw new IdpRejectedError('no_account_in_response');
    const loginHint = account.idTokenClaims?.login_hint;
    return {
      homeAccountId: account.homeAccountId,
      name: account.name,
      username: account.username,
      loginHint: typeof loginHint === 'string' ? loginHint : undefined,
    };
  }

  /**
   * An access token for the user: from the L1 when the row read with the request is the one it
   * came from, or when the session was served from memory (`remembered`); else from their cache
   * through MSAL, or refreshed. Concurrent calls for the same user and scopes in this process share
   * one acquisition.
   */
  async acquireToken(
    homeAccountId: string,
    scopes: readonly string[],
    { forceRefresh = false, tokenCacheRow }: AcquireOptions = {},
  ): Promise<AccessToken> {
    const partitionKey = partitionKeyOf(homeAccountId);
    const scopeKey = scopeKeyOf(scopes);
    if (forceRefresh) {
      this.l1.forgetTokens(partitionKey);
    } else if (tokenCacheRow) {
      const etag = tokenCacheRow === 'remembered' ? undefined : tokenCacheRow.etag;
      const kept = this.l1.get(partitionKey, scopeKey, etag);
      if (kept !== undefined) return { accessToken: kept.accessToken, expiresOn: kept.expiresOn };
    }
    const key = `${partitionKey}\n${scopeKey}\n${forceRefresh}`;
    let pending = this.inFlight.get(key);
    if (pending === undefined) {
      // A remembered row is not at hand: the cache plugin reads it.
      const row = tokenCacheRow === 'remembered' ? undefined : tokenCacheRow;
      pending = this.acquireSilently(homeAccountId, scopes, forceRefresh, row).finally(() =>
        this.inFlight.delete(key),
      );
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /** Deletes the user's tokens (sign-out), here at once: nothing of the user is served from memory. */
  async removeUser(homeAccountId: string): Promise<void> {
    const partitionKey = partitionKeyOf(homeAccountId);
    this.l1.forget(partitionKey);
    try {
      await this.options.store.delete(partitionKey);
    } finally {
      this.l1.forget(partitionKey);
    }
  }

  private async acquireSilently(
    homeAccountId: string,
    scopes: readonly string[],
    forceRefresh: boolean,
    tokenCacheRow: StoredEntity | null | undefined,
  ): Promise<AccessToken> {
    const partitionKey = partitionKeyOf(homeAccountId);
    const epoch = this.l1.epoch;
    const cache = new TableTokenCache(this.options.store, partitionKey, tokenCacheRow);
    const client = await this.client(cache);
    try {
      const account = await client.getTokenCache().getAccountByHomeId(homeAccountId);
      if (account === null) {
        if (cache.unreadable !== undefined) {
          this.options.logger?.warn(
            `token cache: ${cache.unreadable.message}; signing the user out`,
          );
          await this.deleteTokens(cache, partitionKey);
          throw new SignInRequiredError('unreadable_cache');
        }
        throw new SignInRequiredError('no_account');
      }
      const result = await client.acquireTokenSilent({
        account,
        scopes: [...scopes],
        forceRefresh,
      });
      if (!result.fromCache) emitEvent({ event: 'TokenRefreshed', forced: forceRefresh });
      const rowEtag = cache.rowEtag;
      if (rowEtag !== undefined) {
        this.l1.set(partitionKey, scopeKeyOf(scopes), rowEtag, result, epoch);
      }
      return { accessToken: result.accessToken, expiresOn: result.expiresOn };
    } catch (error) {
      const translated = translate(error, cache, scopes);
      if (translated instanceof SignInRequiredError) {
        emitEvent({ event: 'SignInRequired', reason: translated.reason });
        if (translated.reason === 'refresh_rejected') await this.deleteTokens(cache, partitionKey);
      }
      throw translated;
    }
  }

  /** Deletes the user's row, and forgets the user here at once (their sessions re-read the table). */
  private async deleteTokens(cache: TableTokenCache, partitionKey: string): Promise<void> {
    this.l1.forget(partitionKey);
    try {
      await cache.deleteRow();
    } finally {
      this.l1.forget(partitionKey);
    }
  }

  private async client(cache: TableTokenCache | undefined): Promise<ConfidentialClientApplication> {
    const metadata = await this.options.metadata.get();
    return new ConfidentialClientApplication({
      auth: {
        clientId: this.options.clientId,
        clientSecret: this.options.clientSecret,
        authority: metadata.authority,
        knownAuthorities: [metadata.knownAuthority],
        authorityMetadata: metadata.authorityMetadata,
        cloudDiscoveryMetadata: metadata.cloudDiscoveryMetadata,
      },
      ...(cache === undefined ? {} : { cache: { cachePlugin: cache } }),
      system: {
        loggerOptions: silentLogger(this.options.logger),
        ...(this.options.networkClient === undefined
          ? {}
          : { networkClient: this.options.networkClient }),
      },
    });
  }
}

/** Scopes in a canonical order: the same set asked for in another order is the same request. */
function scopeKeyOf(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}

/** Maps what MSAL or the cache threw to the app's typed errors. */
function translate(
  error: unknown,
  cache: TableTokenCache | undefined,
  scopes: readonly string[],
): Error {
  const storeFailure = cache?.failure;
  if (storeFailure !== undefined) {
    return storeFailure instanceof TokenStoreUnavailableError
      ? storeFailure
      : new TokenStoreUnavailableError('The token store failed', { cause: storeFailure });
  }
  if (
    error instanceof SignInRequiredError ||
    error instanceof TokenStoreUnavailableError ||
    error instanceof IdpUnavailableError
  ) {
    return error;
  }
  if (error instanceof InteractionRequiredAuthError) {
    const codes = [error.errorCode, error.subError, ...(error.errorNo ? [error.errorNo] : [])];
    if (codes.some((code) => CONSENT_CODES.has(String(code)))) {
      return new ConsentRequiredError(scopes, { cause: error });
    }
    return new SignInRequiredError('refresh_rejected', { cause: error });
  }
  if (error instanceof ServerError) {
    if (error.errorCode === 'invalid_grant') {
      return new SignInRequiredError('refresh_rejected', { cause: error });
    }
    if ((error.status ?? 0) >= 500 || error.errorCode === 'temporarily_unavailable') {
      return new IdpUnavailableError(undefined, { cause: error });
    }
    return new IdpRejectedError(error.errorCode || 'server_error', { cause: error });
  }
  if (error instanceof AuthError) {
    if (error.errorCode === 'network_error')
      return new IdpUnavailableError(undefined, { cause: error });
    // MSAL refused the answer itself (e.g. a nonce or state that does not match).
    return new IdpRejectedError(error.errorCode || 'client_error', { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
