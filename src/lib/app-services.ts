import { AuthorityMetadataCache } from './idp/authority-metadata';
import { getConfig, type AppConfig, type DownstreamApi } from './config';
import { KeyRing } from './tokens/key-ring';
import { L1TokenCache } from './tokens/l1-token-cache';
import { SessionStore, type RememberedSession } from './auth/session-store';
import { SignInFlow } from './auth/sign-in-flow';
import { startTelemetry } from './telemetry/telemetry';
import { createTableClient, TokenTable } from './tokens/table-storage';
import { TokenCacheStore } from './tokens/token-cache-store';
import { TokenService, type Logger } from './tokens/token-service';
import { WebSite } from './web/web-site';

/** The process-wide objects the functions share, built once from the validated config. */
export interface AppServices {
  readonly config: AppConfig;
  readonly tokenTable: TokenTable;
  readonly authorityMetadata: AuthorityMetadataCache;
  readonly tokenService: TokenService;
  readonly sessions: SessionStore;
  readonly signInFlow: SignInFlow;
  readonly webSite: WebSite;
}

// Outside an invocation the Functions worker forwards console output to the host's logs.
// eslint-disable-next-line no-console
const consoleLogger: Logger = { warn: (message) => console.warn(message) };

export function createAppServices(config: AppConfig, logger: Logger = consoleLogger): AppServices {
  const tokenTable = new TokenTable(
    createTableClient(config.tokenCache.connection, config.tokenCache.tableName),
  );
  const authorityMetadata = new AuthorityMetadataCache(config.authority);
  // Sign-in asks for the first API's read scopes; consent is tenant-wide, so the refresh token
  // then serves every scope of every configured API.
  const [firstApi] = config.downstreamApis as [DownstreamApi, ...DownstreamApi[]];
  // One L1 for sessions and tokens, so a steady call is served from memory with one bound.
  const l1 = new L1TokenCache<RememberedSession>();
  const tokenService = new TokenService({
    clientId: config.clientId,
    credential: config.clientCredential,
    metadata: authorityMetadata,
    store: new TokenCacheStore(tokenTable, new KeyRing(config.tokenCache.keys)),
    // A hung IdP is answered within the first API's timeout, while other users are served.
    idpTimeoutMs: firstApi.timeoutMs,
    logger,
    l1,
  });
  const sessionKeys = new KeyRing(config.session.keys);
  const sessions = new SessionStore(tokenTable, sessionKeys, config.session, { l1 });
  const signInFlow = new SignInFlow(
    {
      redirectUri: config.redirectUri,
      scopes: firstApi.readScopes,
    },
    tokenService,
    sessions,
    sessionKeys,
  );
  const webSite = new WebSite(config.authority);
  return { config, tokenTable, authorityMetadata, tokenService, sessions, signInFlow, webSite };
}

let services: AppServices | undefined;

/**
 * Called at module load by every function file, so that bad settings stop the app at start-up
 * with the config error rather than at the first request.
 */
export function getAppServices(): AppServices {
  if (services === undefined) {
    const config = getConfig();
    startTelemetry(config.telemetry);
    services = createAppServices(config);
  }
  return services;
}
