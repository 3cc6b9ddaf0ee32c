import { AsyncLocalStorage } from 'node:async_hooks';
import type { InvocationContext } from '@azure/functions';
import type { SignInRequiredError } from '../errors';
import type { SignInFailure } from '../auth/sign-in-failure';

/** Every event line starts with this, so one query finds them all (docs/deploy.md, "Telemetry"). */
export const EVENT_PREFIX = 'bff.event';

export type Dependency = 'token_store' | 'identity_provider' | 'downstream_api';

/**
 * What an operator watches for. Fields are fixed vocabularies and flags only: never a token, code,
 * cookie, secret or user identifier, so every event is safe to log.
 */
export type AppEvent =
  | { readonly event: 'SignInCompleted' }
  | {
      readonly event: 'SignInFailed';
      readonly failure: SignInFailure;
      /** The IdP's OAuth error code, already reduced to a safe token. */
      readonly idpError?: string;
    }
  | { readonly event: 'SignedOut' }
  /** The IdP was asked for a token with the user's refresh token (nothing usable was cached). */
  | { readonly event: 'TokenRefreshed'; readonly forced: boolean }
  | { readonly event: 'SignInRequired'; readonly reason: SignInRequiredError['reason'] }
  | {
      readonly event: 'DependencyFailed';
      readonly dependency: Dependency;
      /** Which configured API (a name from DOWNSTREAM_APIS), for `downstream_api`. */
      readonly api?: string;
      /** The error's class name. */
      readonly error: string;
      /** The IdP's OAuth error code (`invalid_client`, …), when it refused the app. */
      readonly code?: string;
      /** The system error and where it went, e.g. `ECONNREFUSED 127.0.0.1:10002` (codes, hosts only). */
      readonly cause?: string;
      /** A fixed sentence saying what to do, for failures met in local development. */
      readonly hint?: string;
    };

const WARNINGS: ReadonlySet<AppEvent['event']> = new Set([
  'SignInFailed',
  'SignInRequired',
  'DependencyFailed',
]);

const invocationLog = new AsyncLocalStorage<InvocationContext>();

/**
 * Runs `handler` so that every event raised while it runs, however deep in the libraries, lands in
 * this invocation's log and is correlated with its request.
 */
export function withInvocationLog<T>(context: InvocationContext, handler: () => T): T {
  return invocationLog.run(context, handler);
}

/** Writes the event as one structured line: `bff.event {"event":"…",…}`. */
export function emitEvent(event: AppEvent): void {
  const line = `${EVENT_PREFIX} ${JSON.stringify(event)}`;
  const warning = WARNINGS.has(event.event);
  const context = invocationLog.getStore();
  if (context !== undefined) {
    if (warning) context.warn(line);
    else context.log(line);
    return;
  }
  // Outside an invocation the Functions worker forwards console output to the host's logs.
  // eslint-disable-next-line no-console
  (warning ? console.warn : console.log)(line);
}
