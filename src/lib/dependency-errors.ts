import { IdpRejectedError, IdpUnavailableError, TokenStoreUnavailableError } from './errors';
import { emitEvent } from './telemetry-events';

/** Seconds a client should wait after a transient failure of the IdP or the token store. */
export const RETRY_AFTER_SECONDS = 5;

export interface DependencyFailure {
  readonly status: 502 | 503;
  readonly title: string;
  readonly detail: string;
  readonly retryAfterSeconds?: number;
}

/**
 * The answer for a failing dependency, or undefined when `error` is not one: the IdP or the token
 * store unavailable is transient (503, retry later); the IdP refusing this app is a 502. Each
 * failure answered is also reported as a `DependencyFailed` event.
 */
export function dependencyFailure(error: unknown): DependencyFailure | undefined {
  if (error instanceof TokenStoreUnavailableError) {
    emitEvent({ event: 'DependencyFailed', dependency: 'token_store', error: error.name });
    return {
      status: 503,
      title: 'Service unavailable',
      detail: 'The token store is unavailable. Try again shortly.',
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    };
  }
  if (error instanceof IdpUnavailableError) {
    emitEvent({ event: 'DependencyFailed', dependency: 'identity_provider', error: error.name });
    return {
      status: 503,
      title: 'Service unavailable',
      detail: 'The identity provider is unavailable. Try again shortly.',
      retryAfterSeconds: RETRY_AFTER_SECONDS,
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
