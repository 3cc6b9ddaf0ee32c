import type { ClientCredential } from '../idp/client-credential';
import {
  AuthError,
  ConfidentialClientApplication,
  LogLevel,
  type AuthenticationResult,
} from '@azure/msal-node';
import type { AuthorityMetadataCache } from '../idp/authority-metadata';
import {
  AdminConsentRequiredError,
  ClientCredentialRejectedError,
  IdpRejectedError,
  IdpUnavailableError,
  SignInRequiredError,
  TokenStoreUnavailableError,
  UserInteractionRequiredError,
} from '../errors';
import { IdpBackoff } from '../idp/idp-backoff';
import { IdpNetworkClient, type TokenEndpointOutcome } from '../idp/idp-network-client';
import { L1TokenCache } from './l1-token-cache';
import { partitionKeyOf } from './partition-key';
import { emitEvent } from '../telemetry/telemetry-events';
import { TableTokenCache } from './table-token-cache';
import type { StoredEntity, TokenCacheRowAsRead, TokenCacheStore } from './token-cache-store';

/** Where the token service reports what an operator should see; never given a token. */
export interface Logger {
  warn(message: string): void;
}

export interface TokenServiceOptions {
  readonly clientId: string;
  readonly credential: ClientCredential;
  readonly metadata: AuthorityMetadataCache;
  readonly store: TokenCacheStore;
  /** The bound on every request to the IdP; msal-node sets none on token requests. */
  readonly idpTimeoutMs: number;
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
  /** A claims request (JSON) from an API's claims challenge, for the authorize request. */
  readonly claims?: string;
}

export interface RedeemCodeRequest {
  readonly code: string;
  readonly codeVerifier: string;
  readonly scopes: readonly string[];
  readonly redirectUri: string;
  readonly state: string;
  readonly nonce: string;
  /** The claims request the authorize request carried, sent again with the code. */
  readonly claims?: string;
}

export interface SignedInUser {
  readonly homeAccountId: string;
  readonly name: string | undefined;
  /** `preferred_username`, else `email`, else `name`, else a neutral label: optional claims are optional. */
  readonly username: string;
  /** Entra's `login_hint` claim, for a sign-out without an account picker. */
  readonly loginHint: string | undefined;
}

export interface AcquireOptions {
  /** Skip the cached access token and redeem the refresh token. */
  readonly forceRefresh?: boolean;
  /** The user's token-cache row as the request got it with its session. */
  readonly tokenCacheRow?: TokenCacheRowAsRead;
  /**
   * A claims request (JSON) from an API's claims challenge. msal-node then skips the cached access
   * token and redeems the refresh token with these claims (msal-common SilentFlowClient
   * `acquireCachedToken`: claims force a refresh; RefreshTokenClient adds them to the request).
   */
  readonly claims?: string;
}

export interface AccessToken {
  readonly accessToken: string;
  readonly expiresOn: Date | null;
}

/**
 * The client capabilities the app declares: `cp1`, "can handle claims challenges", so Entra sends
 * them (continuous access evaluation, Conditional Access authentication context):
 * https://learn.microsoft.com/entra/identity-platform/claims-challenge ("Client capabilities").
 * msal-common merges them into the `claims` parameter of every authorize and token request as
 * `access_token.xms_cc.values` (request/RequestParameterBuilder.ts `buildMergedClaims`, called by
 * protocol/Authorize.ts, client/AuthorizationCodeClient.ts and client/RefreshTokenClient.ts).
 */
export const CLIENT_CAPABILITIES: readonly string[] = ['cp1'];

/** What a user is called when the IdP sent none of the claims that name them. */
export const NEUTRAL_USERNAME = 'Signed-in user';

/**
 * How the app answers the IdP refusing a refresh, from Entra's error, suberror and AADSTS number
 * (https://learn.microsoft.com/entra/identity-platform/reference-error-codes; msal-common copies
 * them into `errorCode`, `subError` and `errorNo`):
 * - admin consent missing (consent_required, AADSTS65001): an operator must act;
 * - the refresh token is dead (bad_token; AADSTS700082 expired, 50173 revoked or password changed,
 *   70043 Conditional Access sign-in frequency; a plain invalid_grant): delete the tokens;
 * - the IdP wants the user (MFA, Conditional Access: interaction_required, login_required,
 *   basic_action, additional_action; AADSTS50076, 50079): keep them and ask for a sign-in.
 */
const CONSENT_CODES = new Set(['consent_required', '65001']);
const DEAD_REFRESH_TOKEN_CODES = new Set(['bad_token', '700082', '50173', '70043']);
const USER_INTERACTION_CODES = new Set([
  'interaction_required',
  'login_required',
  'basic_action',
  'additional_action',
  'message_only',
  'user_password_expired',
  '50076',
  '50079',
]);

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
  private readonly backoff = new IdpBackoff();

  constructor(options: TokenServiceOptions) {
    this.options = options;
    this.l1 = options.l1 ?? new L1TokenCache();
  }

  async authCodeUrl(request: AuthCodeUrlRequest): Promise<string> {
    const network = new IdpNetworkClient(this.options.idpTimeoutMs);
    const client = await this.client(undefined, network);
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
        ...(request.claims === undefined ? {} : { claims: request.claims }),
      });
    } catch (error) {
      throw translate(error, undefined, network.outcome);
    }
  }

  /** Redeems an authorization code and stores the user's tokens in their own row. */
  async redeemCode(request: RedeemCodeRequest): Promise<SignedInUser> {
    const cache = new TableTokenCache(this.options.store);
    const network = new IdpNetworkClient(this.options.idpTimeoutMs);
    const client = await this.client(cache, network);
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
          ...(request.claims === undefined ? {} : { claims: request.claims }),
        },
        { code: request.code, state: request.state },
      );
    } catch (error) {
      throw translate(error, cache, network.outcome);
    }
    const account = result.account;
    if (account === null) throw new IdpRejectedError('no_account_in_response');
    const claims = account.idTokenClaims ?? {};
    const claim = (name: string) => {
      const value = claims[name];
      return typeof value === 'string' && value.trim() !== '' ? value : undefined;
    };
    const name = claim('name');
    return {
      homeAccountId: account.homeAccountId,
      name,
      username: claim('preferred_username') ?? claim('email') ?? name ?? NEUTRAL_USERNAME,
      // Only when the app registration asks for the optional claim; without it, no logout_hint.
      loginHint: claim('login_hint'),
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
    { forceRefresh = false, tokenCacheRow, claims }: AcquireOptions = {},
  ): Promise<AccessToken> {
    const partitionKey = partitionKeyOf(homeAccountId);
    const scopeKey = scopeKeyOf(scopes);
    if (forceRefresh || claims !== undefined) {
      this.l1.forgetTokens(partitionKey);
    } else if (tokenCacheRow) {
      const etag = tokenCacheRow === 'remembered' ? undefined : tokenCacheRow.etag;
      const kept = this.l1.get(partitionKey, scopeKey, etag);
      if (kept !== undefined) return { accessToken: kept.accessToken, expiresOn: kept.expiresOn };
    }
    const key = `${partitionKey}\n${scopeKey}\n${forceRefresh}\n${claims ?? ''}`;
    let pending = this.inFlight.get(key);
    if (pending === undefined) {
      // A remembered row is not at hand: the cache plugin reads it.
      const row = tokenCacheRow === 'remembered' ? undefined : tokenCacheRow;
      pending = this.acquireSilently(homeAccountId, scopes, forceRefresh, row, claims).finally(() =>
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
    claims: string | undefined,
  ): Promise<AccessToken> {
    const partitionKey = partitionKeyOf(homeAccountId);
    const epoch = this.l1.epoch;
    const cache = new TableTokenCache(this.options.store, partitionKey, tokenCacheRow);
    // While the IdP's Retry-After for this user runs, no token request goes out (one probe after).
    const network = new IdpNetworkClient(this.options.idpTimeoutMs, () =>
      this.backoff.enter(partitionKey),
    );
    const client = await this.client(cache, network);
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
        ...(claims === undefined ? {} : { claims }),
      });
      if (!result.fromCache) {
        this.backoff.succeeded(partitionKey);
        emitEvent({ event: 'TokenRefreshed', forced: forceRefresh || claims !== undefined });
      }
      const rowEtag = cache.rowEtag;
      if (rowEtag !== undefined) {
        this.l1.set(partitionKey, scopeKeyOf(scopes), rowEtag, result, epoch);
      }
      return { accessToken: result.accessToken, expiresOn: result.expiresOn };
    } catch (error) {
      const translated = translate(error, cache, network.outcome);
      if (network.outcome.posted === true) {
        this.backoff.failed(
          partitionKey,
          translated instanceof IdpUnavailableError ? translated : undefined,
        );
      }
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

  private async client(
    cache: TableTokenCache | undefined,
    networkClient: IdpNetworkClient,
  ): Promise<ConfidentialClientApplication> {
    const metadata = await this.options.metadata.get();
    return new ConfidentialClientApplication({
      auth: {
        clientId: this.options.clientId,
        ...msalCredential(this.options.credential),
        authority: metadata.authority,
        knownAuthorities: [metadata.knownAuthority],
        authorityMetadata: metadata.authorityMetadata,
        cloudDiscoveryMetadata: metadata.cloudDiscoveryMetadata,
        clientCapabilities: [...CLIENT_CAPABILITIES],
      },
      ...(cache === undefined ? {} : { cache: { cachePlugin: cache } }),
      system: { loggerOptions: silentLogger(this.options.logger), networkClient },
    });
  }
}

/** The credential as msal-node takes it: a secret, or a certificate it signs assertions with. */
function msalCredential(credential: ClientCredential) {
  return credential.kind === 'secret'
    ? { clientSecret: credential.secret }
    : {
        // msal-node 7 then signs with PS256 and names the certificate by `x5t#S256`
        // (ConfidentialClientApplication.setClientCredential, ClientAssertion.createJwt).
        clientCertificate: {
          thumbprintSha256: credential.thumbprintSha256,
          privateKey: credential.privateKeyPem,
          x5c: credential.certificatePem,
        },
      };
}

/** Scopes in a canonical order: the same set asked for in another order is the same request. */
function scopeKeyOf(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}

/** Maps what MSAL or the cache threw, and what the token endpoint answered, to the app's errors. */
function translate(
  error: unknown,
  cache: TableTokenCache | undefined,
  outcome: TokenEndpointOutcome,
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
  const status = outcome.status ?? 0;
  // An outage: no answer in time, a 5xx or 429, an answer that is not JSON, or the IdP saying so.
  // msal-node 7 reports these as ServerError without status, token_parsing_error or network_error.
  const code = error instanceof AuthError ? error.errorCode : '';
  if (
    outcome.heldBackSeconds !== undefined ||
    outcome.timedOut === true ||
    outcome.unparsable === true ||
    status >= 500 ||
    status === 429 ||
    ['server_error', 'temporarily_unavailable', 'network_error', 'token_parsing_error'].includes(
      code,
    )
  ) {
    return new IdpUnavailableError(undefined, {
      cause: error,
      retryAfterSeconds: outcome.heldBackSeconds ?? outcome.retryAfterSeconds,
      timedOut: outcome.timedOut === true,
    });
  }
  if (!(error instanceof AuthError))
    return error instanceof Error ? error : new Error(String(error));
  if (code === 'invalid_client' || code === 'unauthorized_client') {
    return new ClientCredentialRejectedError({ cause: error });
  }
  const codes = [code, error.subError, 'errorNo' in error ? String(error.errorNo) : ''];
  if (codes.some((value) => CONSENT_CODES.has(value))) {
    return new AdminConsentRequiredError({ cause: error });
  }
  if (codes.some((value) => DEAD_REFRESH_TOKEN_CODES.has(value))) {
    return new SignInRequiredError('refresh_rejected', { cause: error });
  }
  if (codes.some((value) => USER_INTERACTION_CODES.has(value))) {
    // Entra may name what it wants in the error body's `claims` (msal-common copies it into
    // InteractionRequiredAuthError.claims: response/ResponseHandler.ts `validateTokenResponse`).
    const claims = 'claims' in error && typeof error.claims === 'string' ? error.claims : '';
    return new UserInteractionRequiredError({
      cause: error,
      ...(claims === '' ? {} : { claims }),
    });
  }
  // A plain invalid_grant, or MSAL finding no refresh token (no_tokens_found, refresh_token_expired).
  if (code === 'invalid_grant' || error.name === 'InteractionRequiredAuthError') {
    return new SignInRequiredError('refresh_rejected', { cause: error });
  }
  // MSAL refused the answer itself (e.g. a nonce or state that does not match), or another refusal.
  return new IdpRejectedError(code || 'client_error', { cause: error });
}
