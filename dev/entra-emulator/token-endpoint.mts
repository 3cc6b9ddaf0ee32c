import { setTimeout as sleep } from 'node:timers/promises';
import type { KoaContext, Middleware } from 'oidc-provider';
import type { FailureFault, FaultInjector } from './faults.mts';
import type { UserDirectory } from './users.mts';

/**
 * Wraps oidc-provider's token endpoint, which does the OAuth work, with what is Entra's own:
 * `client_info` in the response, consent_required for a refresh asking for a scope the user never
 * granted, and the injected faults. The request body is parsed inside the library, so faults are
 * applied to its answer: a faulted request has still been processed (a faulted code redemption
 * uses up the code).
 */
export function entraTokenEndpoint(options: {
  path: string;
  tenantId: string;
  users: UserDirectory;
  faults: FaultInjector;
}): Middleware {
  const { path, tenantId, users, faults } = options;
  return async (ctx, next) => {
    if (ctx.path !== path || ctx.method !== 'POST') return next();
    await next();

    const grantType = ctx.oidc?.params?.grant_type ?? 'unknown';
    const user = users.bySub(ctx.oidc?.account?.accountId);
    const { delayMs, failure } = faults.take({ grantType, oid: user?.oid });
    if (delayMs > 0) await sleep(delayMs);

    const body = isRecord(ctx.body) ? ctx.body : {};
    if (failure) {
      answerWithFault(ctx, failure);
    } else if (ctx.status === 200 && user && ctx.oidc?.body?.client_info === '1') {
      body.client_info = Buffer.from(JSON.stringify({ uid: user.oid, utid: tenantId })).toString(
        'base64url',
      );
    } else if (grantType === 'refresh_token' && body.error === 'invalid_scope') {
      // oidc-provider: "refresh token missing requested scope"; Entra: AADSTS65001.
      ctx.body = entraError(
        65001,
        'invalid_grant',
        `The user or administrator has not consented to use the application with ID '${ctx.oidc?.client?.clientId}' for the requested scopes.`,
        'consent_required',
      );
    }
  };
}

function answerWithFault(ctx: KoaContext, fault: FailureFault): void {
  const note = '(injected by the Entra emulator)';
  switch (fault.kind) {
    case 'refresh_invalid_grant':
      ctx.status = 400;
      ctx.body = entraError(
        50173,
        'invalid_grant',
        `The provided grant has expired due to it being revoked, a fresh auth token is needed. ${note}`,
        'bad_token',
      );
      break;
    case 'refresh_invalid_grant_plain':
      ctx.status = 400;
      ctx.body = entraError(70000, 'invalid_grant', `The provided grant is invalid. ${note}`);
      break;
    case 'token_5xx':
      ctx.status = fault.status ?? 503;
      ctx.set('Retry-After', String(fault.retryAfterSeconds ?? 1));
      ctx.body = entraError(
        90033,
        'temporarily_unavailable',
        `A transient error has occurred. ${note}`,
      );
      break;
  }
}

function entraError(code: number, error: string, description: string, suberror?: string) {
  return {
    error,
    error_description: `AADSTS${code}: ${description}`,
    error_codes: [code],
    ...(suberror !== undefined && { suberror }),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value);
}
