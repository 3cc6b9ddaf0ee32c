// The host half of the local host: an HTTP server that does what the Functions host does between a
// request and the worker (routing, the RpcHttp request, the HTTP response with its cookies), for the
// functions a FunctionApp registered.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  loadFunctionApp,
  logLine,
  type FunctionApp,
  type FunctionRegistration,
  type HttpFunction,
  type InvocationResponse,
  type NullableString,
  type RpcHttp,
  type RpcHttpCookie,
  type TypedData,
} from './function-app.mts';
import { parseRouteTemplate, type RouteTemplate } from './route-template.mts';

export interface LocalHostOptions {
  /** Default 7071, as `func start`; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /**
   * The largest `Content-Length` a function's request may declare. The host sets Kestrel's
   * MaxRequestBodySize to 104857600 (ScriptConstants.DefaultMaxRequestBodySize, Program.cs), or to
   * the app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT when it parses as a number
   * (HttpRequestBodySizeMiddleware.cs): see requestBodySizeLimit.
   */
  maxRequestBodySize?: number;
  /** App setting AzureWebJobsDisableHomepage is "true": `/` with no function gets 204, not the page. */
  disableHomepage?: boolean;
}

/** Kestrel's request body limit in the host, 100 MB (ScriptConstants.DefaultMaxRequestBodySize). */
export const DEFAULT_MAX_REQUEST_BODY_SIZE = 104_857_600;

/** The limit for an app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: used when it is a whole number (long.TryParse). */
export function requestBodySizeLimit(setting: string | undefined): number {
  const text = setting?.trim() ?? '';
  return /^[+-]?\d+$/.test(text) ? Number(text) : DEFAULT_MAX_REQUEST_BODY_SIZE;
}

/** HomepageMiddleware.IsHomepageDisabled: the setting equals "true", ignoring case. */
export function isHomepageDisabled(setting: string | undefined): boolean {
  return setting?.toLowerCase() === 'true';
}

/**
 * A stand-in for the host's home page (Home.html, an embedded resource of the WebHost assembly):
 * what a browser gets on `/` when no function takes the request.
 */
export const HOME_PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Your Functions 4.0 app is up and running</title></head>
<body><h1>Your Functions 4.0 app is up and running</h1>
<p>Azure Functions is an event-based serverless compute experience to accelerate your development.</p>
<p>(This is the local host's stand-in for the Functions host's home page.)</p></body></html>
`;

export interface LocalHost {
  origin: string;
  /** Stops listening, drops open connections (keep-alive included) and runs appTerminate hooks. */
  close(): Promise<void>;
}

/** The route template the host serves a function on: route prefix and route joined. */
export function fullRoute(routePrefix: string, route: string): string {
  return [routePrefix, route].filter((part) => part !== '').join('/');
}

export async function startLocalHost(
  options: LocalHostOptions & { appRoot: string },
): Promise<LocalHost> {
  return createLocalHost(await loadFunctionApp(options.appRoot), options);
}

export async function createLocalHost(
  app: FunctionApp,
  options: LocalHostOptions = {},
): Promise<LocalHost> {
  // The host tries routes in function-name order and takes the first whose template and method match,
  // without ASP.NET Core's literal-before-parameter precedence (azure-functions-host#9876,
  // azure-functions-nodejs-library#300). app.httpFunctions is already in that order.
  const routes: { fn: HttpFunction; template: RouteTemplate }[] = app.httpFunctions.map((fn) => ({
    fn,
    template: parseRouteTemplate(fullRoute(app.routePrefix, fn.route)),
  }));

  async function run(
    fn: FunctionRegistration,
    input: TypedData,
  ): Promise<InvocationResponse | undefined> {
    const invocationId = randomUUID();
    const started = performance.now();
    const elapsed = () =>
      `Id=${invocationId}, Duration=${Math.round(performance.now() - started)}ms`;
    logLine(
      'information',
      `Executing 'Functions.${fn.name}' (Reason='This function was programmatically called via the host APIs.', Id=${invocationId})`,
    );
    try {
      const response = await app.invoke(fn, input, {
        invocationId,
        log: (level, _category, message) => logLine(level, `[${fn.name}] ${message}`),
      });
      logLine('information', `Executed 'Functions.${fn.name}' (Succeeded, ${elapsed()})`);
      return response;
    } catch (err) {
      logLine('error', `Executed 'Functions.${fn.name}' (Failed, ${elapsed()})\n${describe(err)}`);
      return undefined;
    }
  }

  /**
   * The request's absolute URL. The target is appended to the origin rather than resolved against
   * it, so `//host/x` stays a path on this host, as the Functions host reads it. A `\` in the path
   * is escaped first: the URL parser would make it a `/`, where Kestrel's path keeps it a character
   * of its segment (RoutePatternMatcherTest.TryMatch_WithUrlWithStartingBackslash in dotnet/aspnetcore).
   */
  function requestUrl(req: http.IncomingMessage): URL | undefined {
    const raw = req.url ?? '/';
    const queryAt = raw.indexOf('?');
    const target =
      queryAt === -1
        ? raw.replaceAll('\\', '%5C')
        : raw.slice(0, queryAt).replaceAll('\\', '%5C') + raw.slice(queryAt);
    try {
      return new URL(
        target.startsWith('/') ? `http://${req.headers.host ?? 'localhost'}${target}` : target,
      );
    } catch {
      return undefined;
    }
  }

  const maxRequestBodySize = options.maxRequestBodySize ?? DEFAULT_MAX_REQUEST_BODY_SIZE;

  /**
   * The host's pipeline for one request (WebJobsApplicationBuilderExtension.cs): the home page
   * middleware wraps everything after it; the JobHost middleware (CORS on Flex) runs before MVC's
   * admin routes, which run before the function routes.
   */
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = requestUrl(req);
    // Kestrel answers an unparseable request target or Host header with 400, before any function.
    if (url === undefined) return send(res, 400);
    // Flex Consumption is "any Linux consumption" to the host, which then puts ASP.NET Core's
    // CorsMiddleware in the JobHost pipeline (WebScriptHostBuilderExtension.cs,
    // JobHostCorsMiddleware.cs) with the site's CORS origins, none on Flex (CorsOptionsSetup.cs).
    // A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) gets 204 there, with no
    // CORS headers for an origin not allowed, and never reaches routing (CorsMiddleware.cs in
    // dotnet/aspnetcore).
    const isPreflight =
      method === 'OPTIONS' &&
      req.headers.origin !== undefined &&
      req.headers['access-control-request-method'] !== undefined;
    if (!isPreflight) {
      if (await invokeAdmin(req, res, url)) return;
      if (await invokeFunction(req, res, method, url)) return;
    }
    // HomepageMiddleware.cs: a request for exactly `/` (the path, whatever the method or query)
    // that no function ran gets the home page, over whatever status the pipeline set (a preflight's
    // 204 included); 204 when AzureWebJobsDisableHomepage is true.
    if (url.pathname === '/') {
      if (options.disableHomepage) return send(res, 204);
      return send(res, 200, { 'content-type': 'text/html' }, HOME_PAGE);
    }
    send(res, isPreflight ? 204 : 404);
  }

  /**
   * FunctionsController.Invoke (`POST admin/functions/{name}`, an MVC route): the body binds
   * `[FromBody] FunctionInvocation` through the JSON input formatter, so a body that is not JSON by
   * its Content-Type gets 415 (MVC's UnsupportedContentTypeFilter), one that does not bind to an
   * object (empty, malformed, `null`) 400, then an unknown function 404; otherwise 202 and the
   * function runs after. In Azure the route also needs the master key; locally it needs none.
   * True when the request was this route's.
   */
  async function invokeAdmin(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): Promise<boolean> {
    const admin = /^\/admin\/functions\/([^/]+)\/?$/i.exec(url.pathname);
    if (!admin || req.method !== 'POST') return false;
    if (!isJsonInputMediaType(req.headers['content-type'])) {
      send(res, 415);
      return true;
    }
    let invocation: unknown;
    try {
      invocation = JSON.parse((await readBody(req)).toString('utf8'));
    } catch {
      invocation = undefined;
    }
    if (typeof invocation !== 'object' || invocation === null || Array.isArray(invocation)) {
      send(res, 400);
      return true;
    }
    const name = decodeURIComponent(admin[1] ?? '').toLowerCase();
    const fn = app.otherFunctions.find((f) => f.name.toLowerCase() === name);
    if (!fn) {
      send(res, 404);
      return true;
    }
    send(res, 202);
    void run(fn, adminTriggerInput(fn, (invocation as { input?: unknown }).input));
    return true;
  }

  /**
   * The function routes, tried in function-name order (see `routes`): true once a function ran
   * (its answer is written), false when no route took the request.
   */
  async function invokeFunction(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    url: URL,
  ): Promise<boolean> {
    const matched = routes
      .map(({ fn, template }) => ({ fn, params: template.match(url.pathname) }))
      .find(({ fn, params }) => params && (!fn.methods || fn.methods.includes(method)));
    // A route that exists but not for this method also gets 404 with an empty body: the method is one
    // of the route's constraints in the host, not a separate check (azure-functions-host#10098).
    if (!matched?.params) return false;

    // GrpcMessageConversionExtensions.ToRpcHttp reads the body only when `request.ContentLength > 0`:
    // a chunked body (no Content-Length) reaches the worker as no body at all.
    const contentLength = Number(req.headers['content-length'] ?? '0');
    if (contentLength > maxRequestBodySize) {
      // Reading it throws Kestrel's "Request body too large" and the host answers 500
      // (ExceptionMiddleware.cs; azure-functions-host#10519), closing the connection.
      logLine(
        'error',
        `Executed 'Functions.${matched.fn.name}' (Failed): Request body too large. The max request body size is ${maxRequestBodySize} bytes.`,
      );
      res.shouldKeepAlive = false;
      send(res, 500);
      return true;
    }
    const body = contentLength > 0 ? await readBody(req) : undefined;
    const request: RpcHttp = {
      method,
      url: url.href,
      nullableHeaders: headersOf(req),
      nullableQuery: queryOf(url),
      nullableParams: nullable(Object.entries(matched.params)),
      // The worker asks for raw body bytes (RawHttpBodyBytes).
      ...(body ? { body: { bytes: body } } : {}),
    };
    const response = await run(matched.fn, { http: request });
    // A function that throws gets a 500 with an empty body, as from the host.
    if (!response) send(res, 500);
    else writeResponse(res, httpOutput(matched.fn, response));
    return true;
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logLine('error', `The local host failed to serve ${req.method} ${req.url}\n${describe(err)}`);
      if (res.headersSent) res.end();
      else send(res, 500);
    });
  });
  // Node ends the process on an unhandled rejection; the host keeps serving other requests.
  const onRejection = (reason: unknown) =>
    logLine('error', `Unhandled promise rejection\n${describe(reason)}`);
  process.on('unhandledRejection', onRejection);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 7071, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    process.off('unhandledRejection', onRejection);
    throw err;
  }
  const address = server.address() as AddressInfo;
  const hostname = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    origin: `http://${hostname}:${address.port}`,
    async close() {
      process.off('unhandledRejection', onRejection);
      const closed = new Promise<void>((resolve, reject) =>
        server.close((err) => (err ? reject(err) : resolve())),
      );
      server.closeAllConnections();
      await closed;
      await app.terminate();
    },
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// MVC's JSON input formatter (SystemTextJsonInputFormatter / NewtonsoftJsonInputFormatter) reads
// application/json, text/json and application/*+json.
function isJsonInputMediaType(contentType: string | undefined): boolean {
  const type = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  return (
    type === 'application/json' || type === 'text/json' || /^application\/[^/]+\+json$/.test(type)
  );
}

function nullable(entries: [string, string][]): Record<string, NullableString> {
  return Object.fromEntries(entries.map(([key, value]) => [key, { value }]));
}

// ASP.NET Core keeps repeated headers and query keys as StringValues, and the host sends
// StringValues.ToString(): the values joined with ",".
function headersOf(req: http.IncomingMessage): Record<string, NullableString> {
  return nullable(
    Object.entries(req.headersDistinct).map(([name, values]) => [name, (values ?? []).join(',')]),
  );
}

// ASP.NET Core's query collection is keyed ignoring case (KeyValueAccumulator, StringComparer.
// OrdinalIgnoreCase): `?a=1&A=2` is one key, spelled as it first came, with the values "1,2".
function queryOf(url: URL): Record<string, NullableString> {
  const byKey = new Map<string, [string, string[]]>();
  for (const [key, value] of url.searchParams) {
    const entry = byKey.get(key.toUpperCase());
    if (entry) entry[1].push(value);
    else byKey.set(key.toUpperCase(), [key, [value]]);
  }
  return nullable([...byKey.values()].map(([key, values]) => [key, values.join(',')]));
}

function adminTriggerInput(fn: FunctionRegistration, input: unknown): TypedData {
  if (fn.triggerType.toLowerCase() === 'timertrigger') {
    // The host's TimerInfo for a run that is not from the schedule; the library camel-cases it.
    return {
      json: JSON.stringify({
        Schedule: { AdjustForDST: true },
        ScheduleStatus: null,
        IsPastDue: false,
      }),
    };
  }
  return { string: typeof input === 'string' ? input : JSON.stringify(input ?? '') };
}

function httpOutput(fn: FunctionRegistration, response: InvocationResponse): RpcHttp | undefined {
  const name = Object.entries(fn.bindings).find(
    ([, b]) => b.direction === 'out' && b.type.toLowerCase() === 'http',
  )?.[0];
  const data =
    name === '$return'
      ? response.returnValue
      : response.outputData?.find((o) => o.name === name)?.data;
  return data?.http ?? undefined;
}

// Headers stay unsent until end(body), so Node adds Content-Length as Kestrel does for a whole body.
function send(
  res: http.ServerResponse,
  status: number,
  headers: http.OutgoingHttpHeaders = {},
  body: string | Uint8Array = '',
): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined) res.setHeader(name, value);
  res.end(body);
}

function writeResponse(res: http.ServerResponse, output: RpcHttp | undefined): void {
  // No HTTP output at all: the host's FunctionInvocationMiddleware falls back to an empty 200.
  if (!output) return send(res, 200);
  const headers: http.OutgoingHttpHeaders = {};
  const setCookies: string[] = [];
  for (const [name, value] of Object.entries(output.headers ?? {})) {
    if (name.toLowerCase() === 'set-cookie') setCookies.push(value);
    else headers[name] = value;
  }
  setCookies.push(...(output.cookies ?? []).map(serializeCookie));
  if (setCookies.length > 0) headers['set-cookie'] = setCookies;
  send(
    res,
    Number(output.statusCode ?? 200),
    headers,
    output.body?.bytes ?? output.body?.string ?? '',
  );
}

/**
 * A `cookies` entry as the host writes it: Response.Cookies.Append in ASP.NET Core, so the value is
 * Uri.EscapeDataString-encoded, attributes are lower-case and in SetCookieHeaderValue's order, Path
 * defaults to "/" (CookieOptions' default) and SameSite is left out unless set
 * (azure-functions-host RawScriptResultTests.AddsHttpCookies: "secondCookie=cookieValue2; max-age=20;
 * path=/; httponly").
 */
export function serializeCookie(cookie: RpcHttpCookie): string {
  const parts = [`${cookie.name}=${escapeDataString(cookie.value)}`];
  const expires = cookie.expires?.value;
  if (expires) {
    const ms = (expires.seconds ?? 0) * 1000 + (expires.nanos ?? 0) / 1e6;
    parts.push(`expires=${new Date(ms).toUTCString()}`);
  }
  const maxAge = cookie.maxAge?.value;
  if (typeof maxAge === 'number') parts.push(`max-age=${Math.trunc(maxAge)}`);
  const domain = cookie.domain?.value;
  if (typeof domain === 'string') parts.push(`domain=${domain}`);
  parts.push(`path=${cookie.path?.value ?? '/'}`);
  if (cookie.secure?.value) parts.push('secure');
  const sameSite = { lax: 'lax', strict: 'strict', explicitNone: 'none', none: undefined }[
    cookie.sameSite ?? 'none'
  ];
  if (sameSite) parts.push(`samesite=${sameSite}`);
  if (cookie.httpOnly?.value) parts.push('httponly');
  return parts.join('; ');
}

// .NET's Uri.EscapeDataString leaves only RFC 3986 unreserved characters; encodeURIComponent also
// leaves !'()*.
function escapeDataString(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
