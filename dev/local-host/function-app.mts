// The worker half of the local host: loads a v4 Node.js function app the way the Azure Functions Node
// worker does and runs its functions through the app's own `@azure/functions` programming model.
//
// `@azure/functions` reaches the worker through `require('@azure/functions-core')`, a module that only
// the worker provides: it patches `Module.prototype.require` to answer that name (setupCoreModule.ts in
// azure-functions-nodejs-worker). Doing the same here makes every `app.http(...)`/`app.timer(...)` call
// hand its metadata and handler to `registerFunction`, and makes the library give us its
// ProgrammingModel, whose InvocationModel builds HttpRequest/InvocationContext from RPC data and turns
// the handler's result (HttpResponse, `jsonBody`, `cookies`, ...) back into RPC data, exactly as under
// the real worker. The local host only speaks that RPC shape, so behaviour stays the library's.

import { randomBytes } from 'node:crypto';
import { existsSync, globSync, readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';

export type LogLevel =
  'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type LogSink = (level: LogLevel, category: string, message: string) => void;

export interface NullableString {
  value?: string | null;
}

/** An HTTP cookie as the library's toRpcHttpCookie sends it to the host. */
export interface RpcHttpCookie {
  name: string;
  value: string;
  domain?: NullableString | null;
  path?: NullableString | null;
  expires?: { value?: { seconds?: number; nanos?: number } | null } | null;
  secure?: { value?: boolean | null } | null;
  httpOnly?: { value?: boolean | null } | null;
  sameSite?: 'none' | 'lax' | 'strict' | 'explicitNone';
  maxAge?: { value?: number | null } | null;
}

/** The RpcHttp message: a request as the host sends it, or a response as the library returns it. */
export interface RpcHttp {
  method?: string;
  url?: string;
  nullableHeaders?: Record<string, NullableString>;
  nullableQuery?: Record<string, NullableString>;
  nullableParams?: Record<string, NullableString>;
  body?: TypedData | null;
  statusCode?: string;
  headers?: Record<string, string>;
  cookies?: RpcHttpCookie[];
}

export interface TypedData {
  string?: string;
  json?: string;
  bytes?: Uint8Array;
  http?: RpcHttp;
}

export interface InvocationResponse {
  returnValue?: TypedData | null;
  outputData?: { name: string; data?: TypedData | null }[];
}

export interface BindingInfo {
  type: string;
  direction?: 'in' | 'out' | 'inout';
  [property: string]: unknown;
}

type FunctionCallback = (...args: unknown[]) => unknown;

export interface FunctionRegistration {
  name: string;
  /** The trigger binding's type, e.g. `httpTrigger`, `timerTrigger`. */
  triggerType: string;
  triggerBindingName: string;
  bindings: Record<string, BindingInfo>;
  handler: FunctionCallback;
}

export interface HttpFunction extends FunctionRegistration {
  /** The route template without the route prefix; the function name when the binding has none. */
  route: string;
  /** Upper-case methods; undefined when the binding lists none, which the host takes as every method. */
  methods: string[] | undefined;
  authLevel: string;
}

export interface FunctionApp {
  appRoot: string;
  /** host.json `extensions.http.routePrefix`, without slashes; "api" when absent, as the host. */
  routePrefix: string;
  /** In the host's function-name order (compareOrdinalIgnoreCase), the order it tries their routes in. */
  httpFunctions: HttpFunction[];
  otherFunctions: FunctionRegistration[];
  /** Runs one invocation as the worker does (hooks included); rejects with the handler's error. */
  invoke(
    fn: FunctionRegistration,
    triggerInput: TypedData,
    invocation: { invocationId: string; log: LogSink },
  ): Promise<InvocationResponse>;
  /** Runs the app's appTerminate hooks. */
  terminate(): Promise<void>;
}

type InvocationState = 'preInvocationHooks' | 'invocation' | 'postInvocationHooks' | undefined;

interface CoreInvocationContext {
  invocationId: string;
  request: {
    inputData: { name: string; data: TypedData }[];
    traceContext: { traceParent: string; traceState: string; attributes: Record<string, string> };
  };
  metadata: { name: string; bindings: Record<string, BindingInfo> };
  state: InvocationState;
  log: LogSink;
}

interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], handler: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<InvocationResponse>;
}

interface ProgrammingModel {
  getInvocationModel(coreCtx: CoreInvocationContext): InvocationModel | Promise<InvocationModel>;
  getCapabilities?(capabilities: Record<string, string>): Promise<Record<string, string>>;
}

type HookName = 'appStart' | 'appTerminate' | 'preInvocation' | 'postInvocation';
type HookCallback = (context: Record<string, unknown>) => unknown;

const levelRank: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  information: 2,
  warning: 3,
  error: 4,
  critical: 5,
  none: 6,
};

/**
 * Prints one log line with a timestamp, errors to stderr. Like `func start` with host.json's default
 * log level, trace and debug messages are not shown.
 */
export function logLine(level: LogLevel, message: string): void {
  if (levelRank[level] < levelRank.information || level === 'none') return;
  const line = `[${new Date().toISOString()}] ${message}`;
  if (levelRank[level] >= levelRank.error) console.error(line);
  else console.log(line);
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
}

export function readRoutePrefix(appRoot: string): string {
  const file = path.join(appRoot, 'host.json');
  const hostJson = existsSync(file)
    ? (readJson(file) as { extensions?: { http?: { routePrefix?: unknown } } })
    : {};
  const prefix = hostJson.extensions?.http?.routePrefix;
  return typeof prefix === 'string' ? prefix.replace(/^\/+|\/+$/g, '') : 'api';
}

/** The files package.json `main` names, in the order the worker loads them (a glob like `dist/functions/*.js`). */
function entryPointFiles(appRoot: string): string[] {
  const { main } = readJson(path.join(appRoot, 'package.json')) as { main?: unknown };
  if (typeof main !== 'string' || main === '') {
    throw new Error(
      `${path.join(appRoot, 'package.json')} has no "main" naming the function files`,
    );
  }
  const files = globSync(main, { cwd: appRoot }).sort();
  if (files.length === 0) {
    throw new Error(`package.json "main" (${main}) matches no file: is the app built?`);
  }
  return files.map((file) => path.resolve(appRoot, file));
}

// `@azure/functions` keeps the first core module it finds for the life of the process, so one process
// hosts one app.
let loaded = false;

export async function loadFunctionApp(appRoot: string): Promise<FunctionApp> {
  if (loaded) throw new Error('loadFunctionApp can load one function app per process');
  loaded = true;
  const root = path.resolve(appRoot);
  const routePrefix = readRoutePrefix(root);
  const files = entryPointFiles(root);

  const registered: {
    metadata: { name: string; bindings: Record<string, BindingInfo> };
    callback: FunctionCallback;
  }[] = [];
  const hooks = new Map<HookName, HookCallback[]>();
  let programmingModel: ProgrammingModel | undefined;
  let startupFinished = false;

  const coreApi = {
    registerFunction(
      metadata: { name: string; bindings: Record<string, BindingInfo> },
      callback: FunctionCallback,
    ) {
      // Same rules and messages as the worker's coreApi/registerFunction.ts.
      if (startupFinished) throw new Error('A function can only be registered during app startup.');
      if (registered.some((f) => f.metadata.name.toLowerCase() === metadata.name.toLowerCase())) {
        throw new Error(`A function with id "${metadata.name}" has already been registered.`);
      }
      registered.push({ metadata, callback });
    },
    setProgrammingModel(model: ProgrammingModel) {
      programmingModel = model;
    },
    registerHook(name: string, callback: HookCallback) {
      if (!['appStart', 'appTerminate', 'preInvocation', 'postInvocation'].includes(name)) {
        throw new Error(`The local host does not run "${name}" hooks.`);
      }
      const hookName = name as HookName;
      hooks.set(hookName, [...(hooks.get(hookName) ?? []), callback]);
      return {
        dispose: () =>
          hooks.set(
            hookName,
            (hooks.get(hookName) ?? []).filter((c) => c !== callback),
          ),
      };
    },
    log(level: LogLevel, _category: string, message: string) {
      logLine(level, message);
    },
  };
  const moduleProto = Module.prototype as unknown as {
    require: (this: unknown, id: string) => unknown;
  };
  const originalRequire = moduleProto.require;
  moduleProto.require = function (this: unknown, id: string) {
    return id === '@azure/functions-core' ? coreApi : originalRequire.call(this, id);
  };

  const requireFromApp = createRequire(path.join(root, 'package.json'));
  for (const file of files) {
    try {
      requireFromApp(file);
    } catch (err) {
      throw new Error(`${path.relative(root, file)}: ${(err as Error).message}`, { cause: err });
    }
  }
  startupFinished = true;
  if (!programmingModel || registered.length === 0) {
    throw new Error(
      `no function was registered by ${files.map((f) => path.relative(root, f)).join(', ')}`,
    );
  }
  const model: ProgrammingModel = programmingModel;
  // The worker asks for capabilities once the app is loaded; this also locks app.setup().
  const capabilities = (await model.getCapabilities?.({})) ?? {};
  if (capabilities.HttpUri) {
    throw new Error('app.setup({ enableHttpStream: true }) is not supported by the local host');
  }

  const runHooks = async (name: HookName, context: Record<string, unknown>) => {
    for (const callback of hooks.get(name) ?? []) await callback(context);
  };
  const appHookData: Record<string, unknown> = {};
  await runHooks('appStart', { hookData: {}, appHookData, functionAppDirectory: root });

  const functions = registered
    .map(({ metadata, callback }) => toRegistration(metadata.name, metadata.bindings, callback))
    .sort((a, b) => compareOrdinalIgnoreCase(a.name, b.name));

  return {
    appRoot: root,
    routePrefix,
    httpFunctions: functions.filter((f): f is HttpFunction => 'route' in f),
    otherFunctions: functions.filter((f) => !('route' in f)),
    terminate: () => runHooks('appTerminate', { hookData: {}, appHookData }),
    async invoke(fn, triggerInput, { invocationId, log }) {
      // The sequence of the worker's InvocationHandler.ts.
      const coreCtx: CoreInvocationContext = {
        invocationId,
        request: {
          inputData: [{ name: fn.triggerBindingName, data: triggerInput }],
          // Like the host, every invocation is a span of its own trace (W3C traceparent), which the
          // app's telemetry parents its spans to.
          traceContext: {
            traceParent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
            traceState: '',
            attributes: {},
          },
        },
        metadata: { name: fn.name, bindings: fn.bindings },
        state: undefined,
        log,
      };
      const invocationModel = await model.getInvocationModel(coreCtx);
      const { context, inputs } = await invocationModel.getArguments();
      const hookData = {};
      const pre = {
        hookData,
        appHookData,
        invocationContext: context,
        functionCallback: fn.handler,
        inputs,
      };
      coreCtx.state = 'preInvocationHooks';
      await runHooks('preInvocation', pre).finally(() => (coreCtx.state = undefined));
      const post = {
        hookData,
        appHookData,
        invocationContext: context,
        inputs: pre.inputs,
        result: null as unknown,
        error: null as unknown,
      };
      coreCtx.state = 'invocation';
      try {
        post.result = await invocationModel.invokeFunction(
          context,
          pre.inputs,
          pre.functionCallback,
        );
      } catch (err) {
        post.error = err;
      }
      coreCtx.state = 'postInvocationHooks';
      await runHooks('postInvocation', post).finally(() => (coreCtx.state = undefined));
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the handler's own value, whatever it is
      if (post.error !== null && post.error !== undefined) throw post.error;
      return invocationModel.getResponse(context, post.result);
    },
  };
}

/**
 * .NET's StringComparer.OrdinalIgnoreCase, by which the host orders function metadata
 * (FunctionMetadataManager.LoadFunctionMetadata in azure-functions-host) and so the routes it tries:
 * both names upper-cased, then UTF-16 code units compared. Unlike a locale's collation, `_` sorts
 * after the letters and `-` before the digits.
 */
export function compareOrdinalIgnoreCase(a: string, b: string): number {
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

function toRegistration(
  name: string,
  bindings: Record<string, BindingInfo>,
  handler: FunctionCallback,
): FunctionRegistration | HttpFunction {
  const [triggerBindingName, trigger] =
    Object.entries(bindings).find(([, b]) => /trigger$/i.test(b.type)) ?? [];
  if (!triggerBindingName || !trigger) throw new Error(`function "${name}" has no trigger binding`);
  const registration = { name, triggerType: trigger.type, triggerBindingName, bindings, handler };
  if (trigger.type.toLowerCase() !== 'httptrigger') return registration;
  const { route, methods, authLevel } = trigger as {
    route?: unknown;
    methods?: unknown;
    authLevel?: unknown;
  };
  return {
    ...registration,
    route: typeof route === 'string' && route !== '' ? route.replace(/^\/+/, '') : name,
    methods: Array.isArray(methods) ? methods.map((m) => String(m).toUpperCase()) : undefined,
    authLevel: typeof authLevel === 'string' ? authLevel : 'function',
  };
}
