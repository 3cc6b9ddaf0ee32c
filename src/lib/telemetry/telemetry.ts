import { setTimeout as delay } from 'node:timers/promises';
import { app, type FunctionHandler, type FunctionResult } from '@azure/functions';
import type { TelemetrySettings } from '../config';
import { withInvocationLog } from './telemetry-events';
import type { TraceBinder } from './telemetry-tracing';

// How long the first requests of a cold instance wait for tracing to finish loading; once it has
// loaded (or failed), no request waits.
const TRACING_WAIT_MS = 3_000;

let started = false;

/**
 * Starts what the app reports, once per process. Events always go to the current invocation's log.
 * With Application Insights configured, calls to Table Storage, the IdP and the ToDoList API also
 * become dependency spans under the host's request. The tracing SDK is loaded in the background,
 * so it adds nothing to start-up, and never loaded at all without a connection string (locally,
 * in tests).
 */
export function startTelemetry(settings: TelemetrySettings | undefined): void {
  if (started) return;
  started = true;

  let bindTrace: TraceBinder | undefined;
  let tracingSettled = settings === undefined;
  const tracing =
    settings === undefined
      ? Promise.resolve()
      : import('./telemetry-tracing.js')
          .then(({ startTracing }) => {
            bindTrace = startTracing(settings);
          })
          .catch((error: unknown) => {
            // Telemetry must never stop the app: it runs on without spans.
            // eslint-disable-next-line no-console
            console.warn(`telemetry: tracing is off: ${(error as Error).message}`);
          })
          .finally(() => {
            tracingSettled = true;
          });

  app.hook.preInvocation(async (context) => {
    if (!tracingSettled) {
      await Promise.race([tracing, delay(TRACING_WAIT_MS, undefined, { ref: false })]);
    }
    const handler = context.functionHandler;
    const withLog: FunctionHandler = (input: unknown, invocation) =>
      withInvocationLog(invocation, (): FunctionResult => handler(input, invocation));
    context.functionHandler =
      bindTrace === undefined ? withLog : bindTrace(context.invocationContext, withLog);
  });
}
