import {
  ClientCredentialRejectedError,
  IdpRejectedError,
  IdpUnavailableError,
  TokenStoreUnavailableError,
} from '../errors';
import { emitEvent } from '../telemetry/telemetry-events';

/**
 * Seconds a client should wait after a transient failure of the IdP or the token store, when the
 * IdP gave no `Retry-After` of its own.
 */
const RETRY_AFTER_SECONDS = 5;

export interface DependencyFailure {
  readonly status: 502 | 503 | 504;
  readonly title: string;
  readonly detail: string;
  readonly retryAfterSeconds?: number;
}

/**
 * Where a failing dependency was being reached, set by the code that knew it (the table's origin,
 * the authority's host) on the error it throws; never a path, query or credential.
 */
export function withEndpoint<E extends Error>(error: E, endpoint: string): E {
  return Object.assign(error, { endpoint });
}

interface SystemErrorLike {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
  host?: unknown;
}

/** The errors under `error`: its `cause` chain, MSAL's wrapped `error`, an AggregateError's `errors`. */
function errorsUnder(error: unknown, depth = 0): unknown[] {
  if (typeof error !== 'object' || error === null || depth > 8) return [];
  const { cause, errors } = error as { cause?: unknown; errors?: unknown };
  const wrapped = (error as { error?: unknown }).error;
  const inner = [cause, wrapped, ...(Array.isArray(errors) ? (errors as unknown[]) : [])];
  return [error, ...inner.flatMap((next) => errorsUnder(next, depth + 1))];
}

// Node's system, DNS and TLS error codes: ECONNREFUSED, ENOTFOUND, EAI_AGAIN, CERT_HAS_EXPIRED, …
const SYSTEM_CODE = /^(E[A-Z]+|EAI_[A-Z]+|[A-Z_]*CERT[A-Z_]*|ERR_TLS_[A-Z_]+|UND_ERR_[A-Z_]+)$/;

/**
 * What the log says about why a dependency failed: the system error's code and where it was going,
 * e.g. `ECONNREFUSED 127.0.0.1:10002`, `ENOTFOUND contoso.ciamlogin.com`,
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE contoso.ciamlogin.com`. Only codes and host names are taken,
 * never an error message, which could quote a request.
 */
export function describeCause(error: unknown): string | undefined {
  const chain = errorsUnder(error);
  const endpoint = chain
    .map((item) => (item as { endpoint?: unknown }).endpoint)
    .find((value): value is string => typeof value === 'string');
  const system = chain.find((item): item is SystemErrorLike => {
    const { code } = item as SystemErrorLike;
    return typeof code === 'string' && SYSTEM_CODE.test(code);
  });
  if (system === undefined) return endpoint;
  const { code, address, port, hostname, host } = system;
  const target =
    typeof address === 'string'
      ? `${address}${typeof port === 'number' ? `:${port}` : ''}`
      : typeof hostname === 'string'
        ? hostname
        : typeof host === 'string'
          ? host
          : undefined;
  if (target !== undefined) return `${String(code)} ${target}`;
  return endpoint === undefined ? String(code) : `${String(code)} ${endpoint}`;
}

const LOOPBACK = /^(127\.|\[?::1\]?|localhost)/;

/** What to do about it, for the failures a developer meets locally. */
function hintFor(dependency: 'token_store' | 'identity_provider', cause: string | undefined) {
  const [code = '', target = ''] = cause?.split(' ') ?? [];
  if (dependency === 'token_store' && code === 'ECONNREFUSED' && LOOPBACK.test(target)) {
    return 'Start Azurite: npm run dev starts it with the app, or run npx azurite-table in another terminal';
  }
  if (dependency === 'identity_provider' && /^(ENOTFOUND|EAI_AGAIN)$/.test(code)) {
    return "Check TENANT_SUBDOMAIN or AUTHORITY and this machine's DNS and proxy";
  }
  if (dependency === 'identity_provider' && /CERT|TLS/.test(code)) {
    return 'The certificate is not trusted here; for a local emulator set NODE_EXTRA_CA_CERTS to its CA';
  }
  return undefined;
}

/**
 * The answer for a failing dependency, or undefined when `error` is not one: the IdP or the token
 * store unavailable is transient (503, retry later); the IdP refusing this app is a 502. Each
 * failure answered is also reported as a `DependencyFailed` event.
 */
export function dependencyFailure(error: unknown): DependencyFailure | undefined {
  if (error instanceof TokenStoreUnavailableError) {
    const cause = describeCause(error);
    const hint = hintFor('token_store', cause);
    emitEvent({
      event: 'DependencyFailed',
      dependency: 'token_store',
      error: error.name,
      ...(cause !== undefined && { cause }),
      ...(hint !== undefined && { hint }),
    });
    return {
      status: 503,
      title: 'Service unavailable',
      detail: 'The token store is unavailable. Try again shortly.',
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    };
  }
  if (error instanceof IdpUnavailableError) {
    const cause = describeCause(error);
    const hint = hintFor('identity_provider', cause);
    emitEvent({
      event: 'DependencyFailed',
      dependency: 'identity_provider',
      error: error.name,
      ...(cause !== undefined && { cause }),
      ...(hint !== undefined && { hint }),
    });
    // The IdP's own Retry-After wins over the default, whichever is longer or shorter.
    const retryAfterSeconds = Math.max(1, error.retryAfterSeconds ?? RETRY_AFTER_SECONDS);
    return error.timedOut
      ? {
          status: 504,
          title: 'Gateway timeout',
          detail: 'The identity provider did not answer in time. Try again shortly.',
          retryAfterSeconds,
        }
      : {
          status: 503,
          title: 'Service unavailable',
          detail: 'The identity provider is unavailable. Try again shortly.',
          retryAfterSeconds,
        };
  }
  if (error instanceof ClientCredentialRejectedError) {
    emitEvent({
      event: 'DependencyFailed',
      dependency: 'identity_provider',
      error: error.name,
      code: 'invalid_client',
    });
    return {
      status: 502,
      title: 'Bad gateway',
      detail:
        "The identity provider refused this app's credential. The app's operators must fix it.",
    };
  }
  if (error instanceof IdpRejectedError) {
    emitEvent({
      event: 'DependencyFailed',
      dependency: 'identity_provider',
      error: error.name,
      code: error.errorCode,
    });
    return {
      status: 502,
      title: 'Bad gateway',
      detail: 'The identity provider refused the request.',
    };
  }
  return undefined;
}
