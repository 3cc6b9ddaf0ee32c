import { X509Certificate, type JsonWebKey } from 'node:crypto';
import Provider, {
  errors,
  interactionPolicy,
  type Account,
  type Client,
  type HookContext,
  type Interaction,
} from 'oidc-provider';
import { requestedAcrs } from './claims-request.mts';
import type { MemoryStore } from './memory-store.mts';
import { errorPage, respondWithPage } from './pages.mts';
import type { EmulatorUser, UserDirectory } from './users.mts';

/** Token lifetimes in seconds. The emulator reads them for every token it issues. */
export interface Lifetimes {
  accessTokenSeconds: number;
  idTokenSeconds: number;
  refreshTokenSeconds: number;
  /**
   * Refresh tokens of users who sign in with an email one-time passcode: External ID gives them
   * 24 hours (https://learn.microsoft.com/entra/external-id/customers/concept-authentication-methods-customers
   * "Email with one-time passcode"), not the 90 days of the others.
   */
  oneTimePasscodeRefreshTokenSeconds: number;
}

export interface ClientRegistration {
  clientId: string;
  /**
   * The app's credential: a client secret, or a certificate (PEM, public part only) whose key signs
   * client assertions (`private_key_jwt`), as Entra's "Certificates & secrets" registers either:
   * https://learn.microsoft.com/entra/identity-platform/certificate-credentials. A client with a
   * certificate has no secret, so a secret sent for it is refused.
   */
  clientSecret?: string;
  certificatePem?: string;
  /**
   * The app's redirect URIs; a post_logout_redirect_uri must be one of them, as in Entra, which
   * has no separate list (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
   * "Send a sign-out request": the URL "must match one of the redirect URIs registered").
   */
  redirectUris: string[];
}

export interface ApiRegistration {
  clientId: string;
  /** The prefix of the API's scopes, e.g. `api://<clientId>`. */
  appIdUri: string;
  /** Short scope names, e.g. `ToDoList.Read`. */
  scopes: string[];
}

/** Entra's URL shapes under the tenant, plus the emulator's sign-in page. */
export function entraPaths(tenantId: string) {
  return {
    discovery: `/${tenantId}/v2.0/.well-known/openid-configuration`,
    authorize: `/${tenantId}/oauth2/v2.0/authorize`,
    token: `/${tenantId}/oauth2/v2.0/token`,
    logout: `/${tenantId}/oauth2/v2.0/logout`,
    jwks: `/${tenantId}/discovery/v2.0/keys`,
    signIn: `/${tenantId}/login`,
  };
}

export interface ProviderSettings {
  issuer: string;
  tenantId: string;
  clients: readonly ClientRegistration[];
  api: ApiRegistration;
  /** More APIs of the tenant, each with its own audience and scopes (e.g. the notes API). */
  otherApis?: readonly ApiRegistration[];
  users: UserDirectory;
  lifetimes: Readonly<Lifetimes>;
  store: MemoryStore;
  signingKey: JsonWebKey;
  /** Keys that sign oidc-provider's cookies (its session and interaction cookies). */
  cookieKeys: string[];
}

const oidcScopes = ['openid', 'profile', 'offline_access'];

/** A registered certificate's public key as a JWK. */
function certificateJwk(certificatePem: string): JsonWebKey {
  return new X509Certificate(certificatePem).publicKey.export({ format: 'jwk' });
}

/** The base64url SHA-256 thumbprint (`x5t#S256`) of a registered certificate. */
export function certificateThumbprint(certificatePem: string): string {
  const hex = new X509Certificate(certificatePem).fingerprint256.replace(/:/g, '');
  return Buffer.from(hex, 'hex').toString('base64url');
}

/** The profile claims a user has; absent ones are left out, never sent empty. */
function profileClaims(user: EmulatorUser) {
  return {
    ...(user.name !== undefined && { name: user.name }),
    ...(user.preferred_username !== undefined && { preferred_username: user.preferred_username }),
    ...(user.email !== undefined && { email: user.email }),
  };
}

function stringList(value: unknown): string[] {
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === 'string')
    : [];
}

/** An oidc-provider instance configured to answer as Entra External ID does. */
export function createEntraProvider(settings: ProviderSettings): Provider {
  const { tenantId, api, users, lifetimes, store } = settings;
  const paths = entraPaths(tenantId);
  const apis = [api, ...(settings.otherApis ?? [])];
  const scopesOf = (registration: ApiRegistration) =>
    registration.scopes.map((scope) => `${registration.appIdUri}/${scope}`);
  const apiScopes = new Set(apis.flatMap(scopesOf));
  // Entra issues one access token per resource, named by the scopes' prefix: the token of one API
  // carries that API's audience and scopes only (a token request names scopes of one resource:
  // https://learn.microsoft.com/en-us/entra/identity-platform/scopes-oidc).
  const apiOfScope = (scope: string) =>
    apis.find((candidate) => scopesOf(candidate).includes(scope));

  const account = (sub: string): Account | undefined => {
    const user = users.bySub(sub);
    return (
      user && {
        accountId: sub,
        // Optional claims are optional: a user may have no username (phone or social sign-in), no
        // email, and login_hint is issued only when the app registration asks for it.
        claims: () => ({
          sub,
          oid: user.oid,
          tid: tenantId,
          ver: '2.0',
          ...profileClaims(user),
          ...(user.loginHintClaim !== false && { login_hint: user.login_hint }),
        }),
      }
    );
  };

  /**
   * Runs after oidc-provider's own checks of every authorization request. Entra refuses scopes it
   * does not know, and honours offline_access without prompt=consent, where oidc-provider (as
   * OpenID Connect Core section 11 says) has just dropped it.
   */
  const applyEntraScopeRules = (ctx: HookContext, _scope: unknown, client: Client) => {
    const requested = new URLSearchParams(ctx.querystring).get('scope')?.split(' ') ?? [];
    const unknown = requested.filter(
      (scope) => scope !== '' && !oidcScopes.includes(scope) && !apiScopes.has(scope),
    );
    if (unknown.length > 0) {
      throw new errors.InvalidScope(
        `AADSTS70011: The provided value for the input parameter 'scope' is not valid: ${unknown.join(' ')}`,
        unknown.join(' '),
      );
    }
    const granted = ctx.oidc.requestParamScopes;
    if (
      requested.includes('offline_access') &&
      !granted.has('offline_access') &&
      client.grantTypeAllowed('refresh_token')
    ) {
      ctx.oidc.params.scope = [...granted, 'offline_access'].join(' ');
    }
  };

  // External ID has no user consent: an administrator consents for the whole tenant, so the grant
  // holds every scope of the API whatever a sign-in asked for, and a refresh token redeems for
  // any of them (see token-endpoint.mts). Without admin consent (the admin_consent_missing fault)
  // the authorize endpoint stops at its admin-approval page (authorize-consent.mts).
  const loadExistingGrant = async (ctx: HookContext) => {
    const { oidc } = ctx;
    const accountId = oidc.session.accountId;
    const clientId = oidc.client?.clientId;
    if (accountId === undefined || clientId === undefined) return undefined;
    const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(clientId);
    const existing = grantId === undefined ? undefined : await oidc.provider.Grant.find(grantId);
    const grant =
      existing?.accountId === accountId
        ? existing
        : new oidc.provider.Grant({ accountId, clientId });
    grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
    // Nor are users asked about the ID token claims a `claims` parameter names.
    grant.addOIDCClaims([...oidc.requestParamClaims]);
    for (const registration of apis) {
      grant.addResourceScope(registration.appIdUri, scopesOf(registration).join(' '));
    }
    await grant.save();
    return grant;
  };

  const policy = interactionPolicy.base();
  // Entra shows its account picker for prompt=select_account; oidc-provider knows no such prompt.
  policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }), 0);
  policy.get('login')?.checks.push(
    new interactionPolicy.Check(
      'login_hint_other_user',
      'login_hint names a user other than the signed-in one',
      (ctx) => {
        const hinted = users.byHint(ctx.oidc.params.login_hint);
        const signedIn = ctx.oidc.session.accountId;
        return (
          hinted !== undefined &&
          signedIn !== undefined &&
          hinted.sub !== signedIn &&
          ctx.oidc.result?.login === undefined
        );
      },
    ),
  );

  // An authorize request whose `claims` ask for Conditional Access authentication contexts (`acrs`)
  // is a step-up: Entra makes the user satisfy the policies behind them (e.g. MFA) even when they
  // are signed in (https://learn.microsoft.com/entra/identity-platform/developer-guide-conditional-access-authentication-context).
  // The emulator's sign-in stands for that: it asks for it once per such request, and what the
  // request asked for is then satisfied (kept with the code and its refresh tokens, see
  // token-endpoint.mts).
  policy.get('login')?.checks.push(
    new interactionPolicy.Check(
      'claims_acrs',
      'the claims parameter asks for an authentication context',
      (ctx) => {
        if (ctx.oidc.result?.login !== undefined) return false;
        try {
          return requestedAcrs(JSON.parse(ctx.oidc.params.claims ?? 'null')).length > 0;
        } catch {
          return false;
        }
      },
    ),
  );

  return new Provider(settings.issuer, {
    adapter: (model) => store.adapterFor(model),
    clients: settings.clients.map((client) => ({
      client_id: client.clientId,
      redirect_uris: client.redirectUris,
      post_logout_redirect_uris: client.redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(client.certificatePem === undefined
        ? {
            client_secret: client.clientSecret,
            // Either way of sending the secret is accepted, as by Entra.
            token_endpoint_auth_method: 'client_secret_post',
          }
        : {
            token_endpoint_auth_method: 'private_key_jwt',
            // Entra verifies assertions signed with PS256 (the token endpoint wrapper checks that
            // `x5t#S256` names this certificate and `aud` is the token endpoint).
            token_endpoint_auth_signing_alg: 'PS256',
            jwks: { keys: [certificateJwk(client.certificatePem)] },
          }),
    })),
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    claims: {
      openid: ['sub', 'tid', 'ver'],
      profile: ['oid', 'name', 'preferred_username', 'email', 'login_hint'],
    },
    // Entra puts the profile claims in the ID token of the code flow too.
    conformIdTokenClaims: false,
    cookies: { keys: settings.cookieKeys },
    extraParams: { scope: applyEntraScopeRules },
    features: {
      devInteractions: { enabled: false },
      // Neither is offered by Entra to confidential web apps, nor used by MSAL Node.
      dPoP: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      // Entra's userinfo endpoint belongs to Microsoft Graph.
      userinfo: { enabled: false },
      // Entra takes the `claims` parameter (claims challenges, client capabilities). oidc-provider
      // keeps the authorize request's on the code and its refresh tokens; unlike Entra it refuses
      // one with neither `id_token` nor `userinfo` (msal-common always adds `id_token`).
      claimsParameter: { enabled: true },
      // Kept for end_session_endpoint in discovery; the emulator answers the logout URL itself.
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Entra names the API by the scopes' prefix, not by a resource parameter.
        defaultResource: (ctx) => {
          for (const scope of ctx.oidc.requestParamScopes) {
            const owner = apiOfScope(scope);
            if (owner !== undefined) return owner.appIdUri;
          }
          return undefined;
        },
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          const owner = apis.find((candidate) => candidate.appIdUri === resourceIndicator);
          if (owner === undefined) throw new errors.InvalidTarget();
          return {
            scope: scopesOf(owner).join(' '),
            audience: owner.clientId,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    findAccount: (_ctx, sub) => account(sub),
    formats: {
      customizers: {
        // Reshapes oidc-provider's JWT access token into Entra's v2.0 one.
        jwt: (ctx, token, jwt) => {
          const user = users.bySub(token.accountId);
          const { scope, client_id: azp, ...claims } = jwt.payload;
          const scp = typeof scope === 'string' ? scope.split(' ') : [];
          const owner = apis.find((candidate) => candidate.clientId === claims.aud) ?? api;
          jwt.header = { typ: 'JWT' };
          jwt.payload = {
            ...claims,
            nbf: claims.iat,
            azp,
            scp: scp
              .filter((name) => scopesOf(owner).includes(name))
              .map((name) => name.slice(owner.appIdUri.length + 1))
              .join(' '),
            ...(user && { oid: user.oid, tid: tenantId, ...profileClaims(user) }),
            // Set by the token endpoint from the request's `claims` (token-endpoint.mts).
            ...(stringList(ctx.state?.acrs).length > 0 && { acrs: stringList(ctx.state?.acrs) }),
            ...(stringList(ctx.state?.clientCapabilities).length > 0 && {
              xms_cc: stringList(ctx.state?.clientCapabilities),
            }),
            ver: '2.0',
          };
        },
      },
    },
    interactions: {
      policy,
      url: (_ctx, interaction: Interaction) => `${paths.signIn}/${interaction.uid}`,
    },
    jwks: { keys: [settings.signingKey] },
    loadExistingGrant,
    pkce: { required: () => true },
    renderError: (ctx, out) => {
      respondWithPage(ctx, errorPage(out.error ?? 'error', out.error_description), ctx.status);
    },
    responseTypes: ['code'],
    rotateRefreshToken: true,
    routes: {
      authorization: paths.authorize,
      token: paths.token,
      end_session: paths.logout,
      jwks: paths.jwks,
    },
    scopes: oidcScopes,
    ttl: {
      AccessToken: () => lifetimes.accessTokenSeconds,
      IdToken: () => lifetimes.idTokenSeconds,
      RefreshToken: (_ctx, token) =>
        users.bySub(token.accountId)?.signInMethod === 'email_otp'
          ? lifetimes.oneTimePasscodeRefreshTokenSeconds
          : lifetimes.refreshTokenSeconds,
      Grant: () => lifetimes.refreshTokenSeconds,
      AuthorizationCode: () => 10 * 60,
      Interaction: () => 60 * 60,
      Session: () => 24 * 60 * 60,
    },
  });
}
