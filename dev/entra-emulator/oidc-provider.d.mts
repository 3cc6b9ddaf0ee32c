// oidc-provider 9 ships no type declarations (and @types/oidc-provider describes older majors).
// These cover only what the Entra emulator uses, checked against node_modules/oidc-provider/lib.

declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { JsonWebKey } from 'node:crypto';

  type Awaitable<T> = T | Promise<T>;

  export interface Cookies {
    get(name: string, options?: object): string | undefined;
    set(name: string, value: string | null, options?: object): void;
  }

  /** The Koa context, as far as the emulator's middleware and hooks read or write it. */
  export interface KoaContext {
    req: IncomingMessage;
    res: ServerResponse;
    method: string;
    path: string;
    querystring: string;
    secure: boolean;
    status: number;
    body: unknown;
    type: string;
    respond: boolean;
    cookies: Cookies;
    get(field: string): string;
    set(field: string, value: string): void;
    redirect(url: string): void;
    /** Koa's per-request state, shared by the emulator's middleware. */
    state: Record<string, unknown>;
    /** Present once one of the provider's own routes matched the request. */
    oidc?: OIDCContext;
  }

  /** The context passed to configuration hooks, which run inside the provider's routes. */
  export type HookContext = KoaContext & {
    oidc: OIDCContext & { params: Record<string, string | undefined> };
  };

  export type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

  export interface OIDCContext {
    readonly provider: Provider;
    route: string;
    params?: Record<string, string | undefined>;
    /** The parsed request body, with parameters the library does not know about. */
    body?: Record<string, string | string[] | undefined>;
    client?: Client;
    account?: Account;
    session: Session;
    result?: InteractionResults;
    resourceServers: Record<string, ResourceServer>;
    readonly requestParamScopes: Set<string>;
    readonly requestParamOIDCScopes: Set<string>;
    /** The known claims the `claims` parameter asks for in the ID token or userinfo. */
    readonly requestParamClaims: Set<string>;
  }

  export interface Client {
    clientId: string;
    grantTypeAllowed(grantType: string): boolean;
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): Awaitable<Record<string, unknown>>;
  }

  export interface ResourceServer {
    readonly scopes: Set<string>;
  }

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg: string } };
  }

  export interface Session {
    uid: string;
    accountId?: string;
    grantIdFor(clientId: string): string | undefined;
    destroy(): Promise<void>;
  }

  export interface Grant {
    readonly jti: string;
    accountId: string;
    clientId: string;
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface InteractionResults {
    error?: string;
    error_description?: string;
    login?: { accountId: string };
    consent?: { grantId?: string };
    [prompt: string]: unknown;
  }

  export interface Interaction {
    uid: string;
    exp: number;
    prompt: { name: string; reasons: string[] };
    params: Record<string, unknown>;
    session?: { uid: string; accountId?: string };
    save(ttlSeconds: number): Promise<string>;
  }

  /** A refresh token or authorization code as stored; `save()` keeps its id and expiry. */
  export interface StoredToken {
    accountId: string;
    clientId: string;
    scope?: string;
    /** The resource indicator(s) the token was issued for. */
    resource?: string | string[];
    /** The authorize request's `claims` parameter, parsed (features.claimsParameter), kept on the code and its refresh tokens. */
    claims?: Record<string, unknown>;
    save(): Promise<string>;
  }

  /** The token being formatted, as seen by `formats.customizers.jwt`. */
  export interface FormattedToken {
    accountId?: string;
    clientId: string;
    scope?: string;
  }

  export interface StructuredJwt {
    header?: Record<string, unknown>;
    payload: Record<string, unknown>;
  }

  export interface AdapterPayload {
    [property: string]: unknown;
    grantId?: string;
    uid?: string;
    userCode?: string;
    accountId?: string;
    consumed?: number;
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  type Hook<Args extends unknown[], Result> = (
    ctx: HookContext,
    ...args: Args
  ) => Awaitable<Result>;

  export interface Configuration {
    adapter: (modelName: string) => Adapter;
    clients: Record<string, unknown>[];
    clientAuthMethods: string[];
    claims: Record<string, string[]>;
    conformIdTokenClaims: boolean;
    cookies: { keys: string[] };
    extraParams: Record<string, Hook<[value: string | undefined, client: Client], void>>;
    features: {
      devInteractions: { enabled: boolean };
      dPoP: { enabled: boolean };
      pushedAuthorizationRequests: { enabled: boolean };
      userinfo: { enabled: boolean };
      claimsParameter: { enabled: boolean };
      rpInitiatedLogout: { enabled: boolean };
      resourceIndicators: {
        enabled: boolean;
        defaultResource: Hook<[client: Client], string | undefined>;
        useGrantedResource: Hook<[model: unknown], boolean>;
        getResourceServerInfo: Hook<
          [resourceIndicator: string, client: Client],
          ResourceServerInfo
        >;
      };
    };
    findAccount: Hook<[accountId: string], Account | undefined>;
    formats: {
      customizers: {
        jwt: (ctx: HookContext, token: FormattedToken, jwt: StructuredJwt) => Awaitable<void>;
      };
    };
    interactions: {
      policy: Prompt[];
      url: Hook<[interaction: Interaction], string>;
    };
    jwks: { keys: JsonWebKey[] };
    loadExistingGrant: Hook<[], Grant | undefined>;
    pkce: { required: Hook<[client: Client], boolean> };
    renderError: Hook<[out: Record<string, string>, error: Error], void>;
    responseTypes: string[];
    rotateRefreshToken: boolean;
    routes: Record<string, string>;
    scopes: string[];
    ttl: Record<string, (ctx: HookContext | undefined, token: { accountId?: string }) => number>;
  }

  export class Provider {
    constructor(issuer: string, configuration: Configuration);
    readonly issuer: string;
    readonly Session: {
      get(ctx: KoaContext): Promise<Session>;
      findByUid(uid: string): Promise<Session | undefined>;
    };
    readonly Grant: {
      new (properties: { accountId: string; clientId: string }): Grant;
      find(id: string): Promise<Grant | undefined>;
    };
    readonly RefreshToken: { find(value: string): Promise<StoredToken | undefined> };
    readonly AuthorizationCode: { find(value: string): Promise<StoredToken | undefined> };
    use(middleware: Middleware): this;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    cookieName(type: 'session' | 'interaction' | 'resume'): string;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResults,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    on(event: 'server_error', listener: (ctx: KoaContext, error: Error) => void): this;
    on(
      event: 'refresh_token.saved',
      listener: (token: { accountId?: string; exp?: number; expiration?: number }) => void,
    ): this;
  }

  export default Provider;

  export namespace errors {
    class OIDCProviderError extends Error {
      status: number;
      error: string;
      error_description?: string;
    }
    class InvalidScope extends OIDCProviderError {
      constructor(description: string, scope?: string);
    }
    class InvalidTarget extends OIDCProviderError {
      constructor(description?: string);
    }
  }

  export namespace interactionPolicy {
    class Check {
      constructor(
        reason: string,
        description: string,
        check: (ctx: HookContext) => boolean | Promise<boolean>,
      );
    }
    class Prompt {
      constructor(options: { name: string; requestable: boolean }, ...checks: Check[]);
      readonly name: string;
      readonly checks: Check[];
    }
    function base(): Prompt[] & {
      get(name: string): Prompt | undefined;
      add(prompt: Prompt, index?: number): void;
    };
  }
}
