import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KoaContext, Middleware, Provider } from 'oidc-provider';
import { clientCapabilities, parseClaimsRequest, requestedAcrs } from './claims-request.mts';
import type { FailureFault, FaultInjector } from './faults.mts';
import { readBody } from './request-body.mts';
import type { EmulatorUser, UserDirectory } from './users.mts';

/**
 * Wraps oidc-provider's token endpoint, which does the OAuth work, with what is Entra's own:
 * - the injected faults, decided before anything is processed (a failed request leaves the code
 *   or refresh token as it was), so the form is read here and replayed to oidc-provider;
 * - tenant-wide consent: a refresh token is bound to user and client, not to scopes, and redeems
 *   for any scope of the API the tenant consented to (External ID has no user consent:
 *   https://learn.microsoft.com/entra/external-id/customers/how-to-register-ciam-app "Grant admin
 *   consent"), so the refresh token's recorded scopes are widened to the consented ones asked for;
 * - `client_info` in a successful response;
 * - the `claims` request parameter (see `claimsOutcome`);
 * - every error body in Entra's shape (see `entraError`).
 */
export function entraTokenEndpoint(options: {
  path: string;
  tenantId: string;
  provider: Provider;
  users: UserDirectory;
  faults: FaultInjector;
  /** Full names of the API's scopes, every one of them granted tenant-wide. */
  apiScopes: ReadonlySet<string>;
  /** The token endpoint's URL: the only `aud` Entra takes in a client assertion. */
  tokenEndpoint: string;
  /** Registered certificates by client id (`x5t#S256` thumbprints, base64url). */
  certificates: ReadonlyMap<string, ReadonlySet<string>>;
}): Middleware {
  const { path, tenantId, provider, users, faults, apiScopes, tokenEndpoint, certificates } =
    options;

  /** The refresh token or code presented, as stored. */
  const presentedOf = async (grantType: string, form: URLSearchParams) => {
    if (grantType === 'refresh_token') {
      return provider.RefreshToken.find(form.get('refresh_token') ?? '');
    }
    if (grantType === 'authorization_code') {
      return provider.AuthorizationCode.find(form.get('code') ?? '');
    }
    return undefined;
  };

  const widenToConsentedScopes = async (form: URLSearchParams) => {
    const asked = (form.get('scope') ?? '').split(' ').filter((scope) => apiScopes.has(scope));
    const token = await provider.RefreshToken.find(form.get('refresh_token') ?? '');
    if (token === undefined || asked.length === 0) return;
    // Nor is an Entra refresh token bound to one API: it redeems for any consented API, the one
    // the asked scopes name (defaultResource in provider.mts picks it from the list). "Refresh
    // tokens are bound to a combination of user and client, but aren't tied to a resource"
    // (https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens).
    const resources = [
      ...new Set([...apiScopes].map((scope) => scope.slice(0, scope.lastIndexOf('/')))),
    ];
    const held = new Set((token.scope ?? '').split(' '));
    const bound = Array.isArray(token.resource) ? token.resource : [token.resource];
    if (asked.every((scope) => held.has(scope)) && resources.every((r) => bound.includes(r)))
      return;
    token.scope = [...held, ...asked].filter((scope) => scope !== '').join(' ');
    token.resource = resources;
    await token.save();
  };

  return async (ctx, next) => {
    if (ctx.path !== path || ctx.method !== 'POST') return next();
    const text = await readBody(ctx.req);
    replayBody(ctx.req, Buffer.from(text, 'utf8'));
    const form = new URLSearchParams(text);
    const grantType = form.get('grant_type') ?? 'unknown';
    ctx.state.grantType = grantType;

    const presented = await presentedOf(grantType, form);
    const user: EmulatorUser | undefined = users.bySub(presented?.accountId);
    const { delayMs, hang, failure } = faults.take({ grantType, oid: user?.oid });
    if (hang) await hang;
    if (delayMs > 0) await sleep(delayMs);
    if (failure) {
      answerWithFault(ctx, failure, form.get('client_id') ?? '');
      return;
    }
    if (grantType === 'refresh_token') await widenToConsentedScopes(form);
    const refused = assertionRefusal(form, tokenEndpoint, certificates);
    if (refused !== undefined) {
      ctx.status = 401;
      ctx.body = entraError(ctx, refused.code, 'invalid_client', refused.description);
      return;
    }
    const claims = claimsOutcome(grantType, form.get('claims'), presented?.claims);
    if (claims.refusal !== undefined) {
      ctx.status = 400;
      ctx.body = claims.refusal(ctx, form.get('client_id') ?? '');
      return;
    }
    // For the access token's customizer (provider.mts).
    ctx.state.acrs = claims.acrs;
    ctx.state.clientCapabilities = claims.clientCapabilities;

    await next();

    const body = isRecord(ctx.body) ? ctx.body : undefined;
    if (ctx.status === 200 && body && user && ctx.oidc?.body?.client_info === '1') {
      body.client_info = Buffer.from(JSON.stringify({ uid: user.oid, utid: tenantId })).toString(
        'base64url',
      );
    } else if (ctx.status >= 400 && body && typeof body.error === 'string') {
      // oidc-provider's own refusals (a used code, a wrong secret or verifier), in Entra's shape.
      const [code, error] = libraryErrorCodes[body.error] ?? [50000, body.error];
      const description = typeof body.error_description === 'string' ? body.error_description : '';
      ctx.body = entraError(ctx, code, error, description);
    }
  };
}

interface ClaimsOutcome {
  /** Auth context ids for the access token's `acrs` claim. */
  acrs: string[];
  /** Client capabilities for its `xms_cc` claim. */
  clientCapabilities: string[];
  refusal?: (ctx: KoaContext, clientId: string) => ReturnType<typeof entraError>;
}

/**
 * What a token request's `claims` parameter asks, against what the user satisfied when they signed
 * in: the authorize request's `claims` (kept on the code and every refresh token from it; the
 * emulator's sign-in satisfies the auth contexts it asked for, see provider.mts). As Entra:
 * - malformed `claims`: 400 invalid_request, AADSTS50117 ("Failed to deserialize policy specified
 *   in the request's claim parameter", https://learn.microsoft.com/entra/identity-platform/reference-error-codes);
 * - an essential `acrs` the sign-in did not satisfy: the refresh cannot satisfy it, the user must
 *   step up: 400 invalid_grant, AADSTS50076, suberror basic_action, with the body's `claims` naming
 *   what is missing, as Entra's Conditional Access refusals carry one
 *   (https://learn.microsoft.com/entra/identity-platform/claims-challenge; msal-common copies it into
 *   InteractionRequiredAuthError.claims);
 * - otherwise the access token carries the satisfied `acrs` asked for (the code's: all its
 *   authorize request asked) and `xms_cc` when the client declared capabilities such as cp1
 *   (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference "xms_cc";
 *   https://learn.microsoft.com/entra/identity-platform/developer-guide-conditional-access-authentication-context).
 */
function claimsOutcome(
  grantType: string,
  parameter: string | null,
  signedInWith: Record<string, unknown> | undefined,
): ClaimsOutcome {
  const claims = parseClaimsRequest(parameter);
  if (claims === 'malformed') {
    return {
      acrs: [],
      clientCapabilities: [],
      refusal: (ctx) =>
        entraError(
          ctx,
          50117,
          'invalid_request',
          "Failed to deserialize policy specified in the request's claim parameter.",
        ),
    };
  }
  const satisfied = requestedAcrs(signedInWith);
  const missing = requestedAcrs(claims, true).filter((acrs) => !satisfied.includes(acrs));
  if (missing.length > 0) {
    return {
      acrs: [],
      clientCapabilities: [],
      refusal: (ctx, clientId) => ({
        ...entraError(
          ctx,
          50076,
          'invalid_grant',
          `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${clientId}'. (Conditional Access authentication context ${missing.join(', ')}: not satisfied at sign-in)`,
          'basic_action',
        ),
        claims: JSON.stringify({ access_token: { acrs: { essential: true, values: missing } } }),
      }),
    };
  }
  const asked = requestedAcrs(claims).filter((acrs) => satisfied.includes(acrs));
  return {
    acrs: grantType === 'authorization_code' ? satisfied : asked,
    clientCapabilities: [
      ...new Set([...clientCapabilities(claims), ...clientCapabilities(signedInWith)]),
    ],
  };
}

/** oidc-provider's error codes as Entra's AADSTS numbers (reference-error-codes, below). */
const libraryErrorCodes: Record<string, [number, string]> = {
  invalid_grant: [70000, 'invalid_grant'],
  invalid_client: [7000215, 'invalid_client'],
  invalid_request: [900144, 'invalid_request'],
  invalid_scope: [70011, 'invalid_scope'],
  unauthorized_client: [700016, 'unauthorized_client'],
  unsupported_grant_type: [70003, 'unsupported_grant_type'],
};

/**
 * The faults as Entra answers them. Codes and suberrors from
 * https://learn.microsoft.com/entra/identity-platform/reference-error-codes and the bodies Entra
 * sends (e.g. 50076 with suberror basic_action; 700082 with bad_token), which msal-common's
 * `isInteractionRequiredError` (error/InteractionRequiredAuthError.ts) classifies by error and
 * suberror.
 */
/**
 * What Entra checks in a client assertion beyond what oidc-provider does (the signature, `iss`,
 * `sub`, `exp`, `jti` stay oidc-provider's): the header names a registered certificate by its
 * SHA-256 thumbprint (`x5t#S256`) and `aud` is exactly the token endpoint, per
 * https://learn.microsoft.com/entra/identity-platform/certificate-credentials ("Assertion format").
 * AADSTS700027: "Client assertion failed signature validation" (the key was not found).
 */
function assertionRefusal(
  form: URLSearchParams,
  tokenEndpoint: string,
  certificates: ReadonlyMap<string, ReadonlySet<string>>,
): { code: number; description: string } | undefined {
  const assertion = form.get('client_assertion');
  if (assertion === null) return undefined;
  const [header, payload] = assertion
    .split('.')
    .slice(0, 2)
    .map((part) => {
      try {
        return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<
          string,
          unknown
        >;
      } catch {
        return undefined;
      }
    });
  const clientId = typeof payload?.iss === 'string' ? payload.iss : (form.get('client_id') ?? '');
  const registered = certificates.get(clientId);
  const thumbprint = header?.['x5t#S256'];
  if (registered === undefined || typeof thumbprint !== 'string' || !registered.has(thumbprint)) {
    return {
      code: 700027,
      description: `Client assertion failed signature validation. The key was not found: no certificate with this x5t#S256 is registered for app '${clientId}'.`,
    };
  }
  if (payload?.aud !== tokenEndpoint) {
    return {
      code: 700027,
      description: `Client assertion contains an invalid audience: it must be '${tokenEndpoint}'.`,
    };
  }
  return undefined;
}

function answerWithFault(ctx: KoaContext, fault: FailureFault, clientId: string): void {
  const note = '(injected by the Entra emulator)';
  // Entra sends Retry-After with some outages only: the fault sends it when given one.
  const retryAfter = (seconds: number | undefined) => {
    if (seconds !== undefined) ctx.set('Retry-After', String(seconds));
  };
  switch (fault.kind) {
    case 'refresh_invalid_grant':
      ctx.status = 400;
      ctx.body = entraError(
        ctx,
        50173,
        'invalid_grant',
        `The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. ${note}`,
        'bad_token',
      );
      break;
    case 'refresh_expired':
      ctx.status = 400;
      ctx.body = entraError(
        ctx,
        700082,
        'invalid_grant',
        `The refresh token has expired due to inactivity. ${note}`,
        'bad_token',
      );
      break;
    case 'refresh_session_expired':
      ctx.status = 400;
      ctx.body = entraError(
        ctx,
        70043,
        'invalid_grant',
        `The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. ${note}`,
        'bad_token',
      );
      break;
    case 'refresh_invalid_grant_plain':
      ctx.status = 400;
      ctx.body = entraError(ctx, 70000, 'invalid_grant', `The provided grant is invalid. ${note}`);
      break;
    case 'refresh_mfa_required':
      ctx.status = 400;
      ctx.body = entraError(
        ctx,
        50076,
        'invalid_grant',
        `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${clientId}'. ${note}`,
        'basic_action',
      );
      break;
    case 'refresh_mfa_registration_required':
      ctx.status = 400;
      ctx.body = entraError(
        ctx,
        50079,
        'invalid_grant',
        `Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '${clientId}'. ${note}`,
        'additional_action',
      );
      break;
    case 'admin_consent_missing':
      ctx.status = 400;
      ctx.body = entraError(
        ctx,
        65001,
        'invalid_grant',
        `The user or administrator has not consented to use the application with ID '${clientId}'. Send an interactive authorization request for this user and resource. ${note}`,
        'consent_required',
      );
      break;
    case 'client_secret_expired':
      ctx.status = 401;
      ctx.body = entraError(
        ctx,
        7000222,
        'invalid_client',
        `The provided client secret keys for app '${clientId}' are expired. ${note}`,
      );
      break;
    case 'server_error':
      ctx.status = 500;
      ctx.body = entraError(
        ctx,
        90036,
        'server_error',
        `An unexpected, non-retryable error has occurred. ${note}`,
      );
      break;
    case 'token_5xx':
      ctx.status = fault.status ?? 503;
      retryAfter(fault.retryAfterSeconds);
      ctx.body = entraError(
        ctx,
        90033,
        'temporarily_unavailable',
        `A transient error has occurred. Please try again. ${note}`,
      );
      break;
    case 'html_503':
      // A front end's own error page, not the token service's JSON.
      ctx.status = 503;
      retryAfter(fault.retryAfterSeconds);
      ctx.type = 'html';
      ctx.body =
        '<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>';
      break;
    case 'throttled':
      // An explicit null body after the status: Koa sends it empty (no status text).
      ctx.body = null;
      ctx.status = 429;
      retryAfter(fault.retryAfterSeconds);
      break;
  }
}

/**
 * An error body as Entra sends one: `error_description` starting `AADSTS<code>:` and ending with
 * the trace id, correlation id (the client's `client-request-id`, as MSAL sends it) and timestamp,
 * which also come as fields, with `error_codes` and `error_uri`
 * (https://learn.microsoft.com/entra/identity-platform/reference-error-codes "Handling error codes
 * in your application").
 */
export function entraError(
  ctx: KoaContext,
  code: number,
  error: string,
  description: string,
  suberror?: string,
) {
  const traceId = randomUUID();
  const requested = ctx.get('client-request-id');
  const correlationId = /^[0-9a-f-]{36}$/i.test(requested) ? requested : randomUUID();
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return {
    error,
    error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    ...(suberror !== undefined && { suberror }),
  };
}

/**
 * Lets oidc-provider read a request body the emulator has read already, as a stream again
 * (lib/shared/selective_body.js reads `req.readable` and `req.iterator()`); its fallback for a
 * parsed `req.body` would print a warning meant for apps with a body parser in front.
 */
function replayBody(req: IncomingMessage, body: Buffer): void {
  Object.defineProperty(req, 'readable', { value: true, configurable: true });
  Object.defineProperty(req, 'iterator', {
    configurable: true,
    value: async function* replay() {
      await Promise.resolve();
      yield body;
    },
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value);
}
