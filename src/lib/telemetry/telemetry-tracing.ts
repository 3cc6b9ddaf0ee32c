// Loaded only by telemetry.ts, in the background, when Application Insights is configured: these
// modules take a noticeable time to load, which a cold start should not wait for.

import { createRequire } from 'node:module';
import { app, type FunctionHandler, type InvocationContext } from '@azure/functions';
import { ManagedIdentityCredential } from '@azure/identity';
import { AzureMonitorTraceExporter } from '@azure/monitor-opentelemetry-exporter';
import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { detectResources, envDetector } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
} from '@opentelemetry/sdk-trace-node';
import type { TelemetrySettings } from '../config';

/** Makes a handler run as a child of the host's span for the invocation. */
export type TraceBinder = (
  invocation: InvocationContext,
  handler: FunctionHandler,
) => FunctionHandler;

/**
 * Exports spans of the app's outgoing calls to Application Insights: Table Storage and the ToDoList
 * API (node:http, via the Azure SDK and the API client) and the IdP (fetch, via MSAL). The host already
 * records each request, so incoming HTTP is not instrumented.
 */
export function startTracing(settings: TelemetrySettings): TraceBinder {
  const exporter = new AzureMonitorTraceExporter({
    connectionString: settings.connectionString,
    ...(settings.managedIdentity === undefined
      ? {}
      : { credential: new ManagedIdentityCredential({ ...settings.managedIdentity }) }),
  });
  const provider = new NodeTracerProvider({
    // OTEL_SERVICE_NAME (set in infra/app.bicep) names the app in Application Insights.
    resource: detectResources({ detectors: [envDetector] }),
    // Keep exactly the requests the host keeps (OTEL_TRACES_SAMPLER is the host's, not ours).
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({ disableIncomingRequestInstrumentation: true }),
      new UndiciInstrumentation(),
    ],
  });
  // The app loaded node:http and node:https before tracing started, and the instrumentation patches
  // a module when it is next required: require both once more (the exports are patched in place,
  // so every client that already holds them is traced).
  const requireAgain = createRequire(__filename);
  requireAgain('node:http');
  requireAgain('node:https');

  app.hook.appTerminate(() => provider.shutdown());

  return (invocation, handler) => {
    const traceParent = invocation.traceContext?.traceParent;
    if (traceParent === undefined || traceParent === null) return handler;
    const extracted = propagation.extract(ROOT_CONTEXT, {
      traceparent: traceParent,
      tracestate: invocation.traceContext?.traceState ?? '',
    });
    const spanContext = trace.getSpanContext(extracted);
    if (spanContext === undefined) return handler;
    // A non-recording stand-in for the host's span: instrumentations look for an active span to
    // parent theirs, and the host exports the real one.
    return context.bind(trace.setSpan(extracted, trace.wrapSpanContext(spanContext)), handler);
  };
}
