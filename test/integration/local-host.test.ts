import { spawn } from 'node:child_process';
import http from 'node:http';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net, { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareOrdinalIgnoreCase, readRoutePrefix } from '../../dev/local-host/function-app.mts';
import { fullRoute, HOME_PAGE } from '../../dev/local-host/local-host.mts';
import { parseRouteTemplate } from '../../dev/local-host/route-template.mts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const node = path.join(repoRoot, 'node_modules/.bin/node');
const cli = path.join(repoRoot, 'dev/local-host/cli.mts');
const fixture = path.join(repoRoot, 'test/fixtures/local-host-app');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface CliRun {
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match in the stream; rejects if the process exits before it appears. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

function runCli(cwd: string, env: Record<string, string | undefined>): CliRun {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of [
    'FROM_SETTINGS',
    'OVERRIDDEN',
    'FAIL_AT_IMPORT',
    'HOST',
    'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
    'AzureWebJobsDisableHomepage',
  ]) {
    if (!(name in env)) delete childEnv[name];
  }
  const child = spawn(node, [cli], { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const text = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  let hasExited = false;
  const changed = () => listeners.forEach((listener) => listener());
  child.stdout
    .setEncoding('utf8')
    .on('data', (chunk: string) => ((text.stdout += chunk), changed()));
  child.stderr
    .setEncoding('utf8')
    .on('data', (chunk: string) => ((text.stderr += chunk), changed()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      hasExited = true;
      resolve(code);
      changed();
    }),
  );
  return {
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    exited,
    kill: (signal) => child.kill(signal),
    waitFor: (stream, pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(text[stream]);
          if (match) resolve(match);
          else if (hasExited)
            reject(new Error(`exited without ${pattern}:\n${text.stdout}\n${text.stderr}`));
          else return;
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
  };
}

const listening = /Local host listening on (http:\/\/\S+)/;

/** A GET of a request target exactly as given, which neither fetch nor node:http sends unchanged. */
function rawTarget(origin: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`),
    );
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body });
    });
  });
}

/**
 * A request through node:http, which fetch cannot make: a chunked body (`chunks`, written one by
 * one without Content-Length) or a declared Content-Length with no body sent at all.
 */
function rawRequest(
  origin: string,
  method: string,
  path: string,
  chunks: string[] | undefined,
  headers: http.OutgoingHttpHeaders,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${origin}${path}`, { method, headers, agent: false });
    request.on('error', reject);
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    if (chunks === undefined) {
      // Headers only: the server must answer before any body byte arrives.
      request.flushHeaders();
      return;
    }
    for (const chunk of chunks) request.write(chunk);
    request.end();
  });
}

/** A copy of the fixture with a local.settings.json; node_modules links back so it resolves @azure/functions. */
function fixtureCopy(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'local-host-app-'));
  cpSync(fixture, dir, { recursive: true });
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  writeFileSync(
    path.join(dir, 'local.settings.json'),
    JSON.stringify({
      IsEncrypted: false,
      Values: {
        FUNCTIONS_WORKER_RUNTIME: 'node',
        FROM_SETTINGS: 'from-settings',
        OVERRIDDEN: 'from-settings',
      },
    }),
  );
  return dir;
}

describe('route templates', () => {
  it('matches literal segments case-insensitively and ignores a trailing slash', () => {
    const route = parseRouteTemplate('api/Items/list');
    expect(route.match('/api/items/LIST')).toEqual({});
    expect(route.match('/api/items/list/')).toEqual({});
    expect(route.match('/api/items')).toBeUndefined();
    expect(route.match('/api/items/list/more')).toBeUndefined();
  });

  it('decodes parameters but keeps an encoded slash inside its segment', () => {
    const route = parseRouteTemplate('items/{id}/parts/{part}');
    expect(route.match('/items/a%20b/parts/x%2Fy')).toEqual({ id: 'a b', part: 'x%2Fy' });
    expect(route.match('/items//parts/x')).toBeUndefined();
  });

  it('leaves out a missing optional parameter and applies a default', () => {
    expect(parseRouteTemplate('pages/{name?}').match('/pages')).toEqual({});
    expect(parseRouteTemplate('pages/{name?}').match('/pages/home')).toEqual({ name: 'home' });
    expect(parseRouteTemplate('pages/{name=index}').match('/pages')).toEqual({ name: 'index' });
  });

  it('gives a catch-all the rest of the path', () => {
    const route = parseRouteTemplate('files/{*path}');
    expect(route.match('/files')).toEqual({});
    expect(route.match('/files/a/b/c.txt')).toEqual({ path: 'a/b/c.txt' });
    expect(parseRouteTemplate('files/{**path}').match('/files/a/b')).toEqual({ path: 'a/b' });
  });

  // Cases of RoutePatternMatcherTest.cs (dotnet/aspnetcore src/Http/Routing/test/UnitTests/Patterns),
  // the matcher behind the host's routes (WebJobsRouteBuilder.MapFunctionRoute adds a `Route`).
  describe('as ASP.NET Core RoutePatternMatcher, which the host routes with', () => {
    const catchAll = parseRouteTemplate('{p1}/{*p2}');

    it('TryMatch_RouteWithCatchAll_MatchesMultiplePathSegments', () => {
      expect(catchAll.match('/v1/v2/v3')).toEqual({ p1: 'v1', p2: 'v2/v3' });
    });

    it('TryMatch_RouteWithCatchAll_MatchesTrailingSlash and _MatchesEmptyContent', () => {
      expect(catchAll.match('/v1/')).toEqual({ p1: 'v1' });
      expect(catchAll.match('/v1')).toEqual({ p1: 'v1' });
    });

    it('TryMatch_WithCatchAllCapturesDots', () => {
      expect(
        parseRouteTemplate('Home/ShowPilot/{missionId}/{*name}').match(
          '/Home/ShowPilot/777/12345./foobar',
        ),
      ).toEqual({ missionId: '777', name: '12345./foobar' });
    });

    it('a catch-all takes the raw rest of the path: a trailing slash and empty segments stay (SavePathSegmentsAsValues)', () => {
      expect(catchAll.match('/v1/abc/')).toEqual({ p1: 'v1', p2: 'abc/' });
      expect(catchAll.match('/v1/a//b/')).toEqual({ p1: 'v1', p2: 'a//b/' });
      // Decoded as Kestrel decodes the path, `%2F` kept.
      expect(catchAll.match('/v1/a%20b/c%2Fd/')).toEqual({ p1: 'v1', p2: 'a b/c%2Fd/' });
    });

    it('an empty segment where the catch-all starts does not match', () => {
      expect(catchAll.match('/v1//abc')).toBeUndefined();
    });

    it.each(['///', '/a//', '/a/b//', '//b//', '///c', '///c/'])(
      'TryMatch_MultipleOptionalParameters_WithEmptyIntermediateSegmentsDoesNotMatch %s',
      (url) => {
        expect(parseRouteTemplate('{controller?}/{action?}/{id?}').match(url)).toBeUndefined();
      },
    );

    it.each(['/', '/a', '/a/', '/a/b', '/a/b/', '/a/b/c', '/a/b/c/'])(
      'TryMatch_MultipleOptionalParameters_WithIncrementalOptionalValues %s',
      (url) => {
        expect(parseRouteTemplate('{controller?}/{action?}/{id?}').match(url)).toBeDefined();
      },
    );

    it('TryMatch_WithSimpleMultiSegmentParamsOnBothEndsTrailingSlashDoesNotMatch', () => {
      expect(parseRouteTemplate('language/{lang}').match('/language/')).toBeUndefined();
    });

    it('TryMatch_RouteWithExtraSeparators_Success and TryMatch_LongerUrl_Fails', () => {
      expect(parseRouteTemplate('moo/bar').match('/moo/bar/')).toEqual({});
      expect(parseRouteTemplate('{p1}').match('/moo/bar')).toBeUndefined();
    });
  });

  it('orders function names as .NET StringComparer.OrdinalIgnoreCase (FunctionMetadataManager.cs)', () => {
    // A locale collation would put "shadow_b" first and "web-page" after "web1".
    expect(
      ['shadow_b', 'web1', 'shadowA', 'Web-page', 'webPage'].sort(compareOrdinalIgnoreCase),
    ).toEqual(['shadowA', 'shadow_b', 'Web-page', 'web1', 'webPage']);
  });

  it('applies constraints', () => {
    const route = parseRouteTemplate('square/{n:int}');
    expect(route.match('/square/-12')).toEqual({ n: '-12' });
    expect(route.match('/square/2147483647')).toEqual({ n: '2147483647' });
    expect(route.match('/square/2147483648')).toBeUndefined();
    expect(route.match('/square/1.5')).toBeUndefined();
    expect(route.match('/square/abc')).toBeUndefined();
    expect(
      parseRouteTemplate('x/{id:guid}').match('/x/3F2504E0-4F89-11D3-9A0C-0305E82C3301'),
    ).toBeTruthy();
    expect(parseRouteTemplate('x/{id:alpha:minlength(2)}').match('/x/a')).toBeUndefined();
    expect(parseRouteTemplate('x/{id:alpha:minlength(2)}').match('/x/ab')).toEqual({ id: 'ab' });
    expect(parseRouteTemplate('x/{n:min(10)}').match('/x/9')).toBeUndefined();
    expect(parseRouteTemplate('x/{v:regex(^v\\d+$)}').match('/x/V2')).toEqual({ v: 'V2' });
  });

  it('matches the empty template only at the root', () => {
    expect(parseRouteTemplate('').match('/')).toEqual({});
    expect(parseRouteTemplate('').match('/x')).toBeUndefined();
  });

  it('refuses templates it cannot match like the host', () => {
    expect(() => parseRouteTemplate('x/{a}.{b}')).toThrow(/not supported/);
    expect(() => parseRouteTemplate('x/{id:unknown}')).toThrow(/constraint "unknown"/);
    expect(() => parseRouteTemplate('x/{*rest}/y')).toThrow(/catch-all must be the last/);
    expect(() => parseRouteTemplate('x/{a?}/y')).toThrow(/optional/);
    expect(() => parseRouteTemplate('x/{n:min(a)}')).toThrow(/not an integer/);
  });

  it('joins the route prefix and the route', () => {
    expect(fullRoute('api', 'items/{id}')).toBe('api/items/{id}');
    expect(fullRoute('', 'items/{id}')).toBe('items/{id}');
  });
});

describe('host.json route prefix', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'local-host-json-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['no host.json', undefined, 'api'],
    ['no http section', { version: '2.0' }, 'api'],
    ['an empty prefix', { version: '2.0', extensions: { http: { routePrefix: '' } } }, ''],
    ['slashes around it', { version: '2.0', extensions: { http: { routePrefix: '/v1/' } } }, 'v1'],
  ])('%s', (name, hostJson, expected) => {
    const appRoot = path.join(dir, name.replaceAll(' ', '-'));
    mkdirSync(appRoot);
    if (hostJson) writeFileSync(path.join(appRoot, 'host.json'), JSON.stringify(hostJson));
    expect(readRoutePrefix(appRoot)).toBe(expected);
  });
});

describe('local host CLI serving the fixture app', () => {
  let appDir: string;
  let host: CliRun;
  let origin: string;

  beforeAll(async () => {
    appDir = fixtureCopy();
    host = runCli(appDir, { PORT: String(await freePort()), OVERRIDDEN: 'from-env' });
    [, origin = ''] = await host.waitFor('stdout', listening);
  });

  afterAll(async () => {
    host.kill('SIGKILL');
    await host.exited;
    rmSync(appDir, { recursive: true, force: true });
  });

  const get = (route: string, init?: RequestInit) => fetch(`${origin}${route}`, init);

  it('lists the functions like func start', () => {
    expect(host.stdout()).toContain(`\tgetItem: [GET] ${origin}/api/items/{id}\n`);
    expect(host.stdout()).toContain(`\tchangeItem: [PUT,DELETE] ${origin}/api/Items/{id}\n`);
    expect(host.stdout()).toContain(`\thello: [GET] ${origin}/api/hello\n`);
    expect(host.stdout()).toContain('\tcleanup: timerTrigger\n');
  });

  it('passes route parameters', async () => {
    expect(await (await get('/api/items/5')).json()).toEqual({ function: 'getItem', id: '5' });
    expect(await (await get('/api/ITEMS/a%20b/')).json()).toEqual({
      function: 'getItem',
      id: 'a b',
    });
    expect(await (await get('/api/pages')).json()).toEqual({ name: null });
    expect(await (await get('/api/pages/home')).json()).toEqual({ name: 'home' });
    expect(await (await get('/api/files/a/b/c.txt')).json()).toEqual({ path: 'a/b/c.txt' });
    expect(await (await get('/api/square/7')).json()).toEqual({ square: 49 });
    expect((await get('/api/square/seven')).status).toBe(404);
  });

  it('tries routes in function-name order, as the host does', async () => {
    expect(await (await get('/api/items/special')).json()).toEqual({
      function: 'getItem',
      id: 'special',
    });
  });

  it('filters on methods, falling through to another function on the same route', async () => {
    const put = await get('/api/items/9', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ description: 'x' }),
    });
    expect(await put.json()).toEqual({
      function: 'changeItem',
      id: '9',
      body: { description: 'x' },
    });
    const del = await get('/api/items/9', { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(await del.text()).toBe('');
  });

  it('answers 404 with an empty body for a method the route does not allow, as the host', async () => {
    for (const response of [
      await get('/api/items/9', { method: 'POST' }),
      await get('/api/hello', { method: 'PUT' }),
    ]) {
      expect(response.status).toBe(404);
      expect(await response.text()).toBe('');
    }
  });

  it('answers 404 for an unknown route and for a route without its prefix', async () => {
    expect((await get('/api/nothing')).status).toBe(404);
    expect((await get('/hello')).status).toBe(404);
  });

  it('writes every cookie as its own Set-Cookie header, serialized as the host does', async () => {
    const response = await get('/api/cookies');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-custom')).toBe('yes');
    expect(response.headers.getSetCookie()).toEqual([
      '__Host-session=abc; max-age=3600; path=/; secure; samesite=strict; httponly',
      '__Host-state=a%20b%3Bc; expires=Tue, 01 Jan 2030 00:00:00 GMT; path=/; secure; samesite=lax; httponly',
      'plain=1; path=/',
      'wide=v; domain=example.test; path=/; secure; samesite=none',
    ]);
    expect(await response.text()).toBe('cookies set');
  });

  it('gives the handler the body, query, headers and absolute URL', async () => {
    const response = await get('/api/echo?a=1&a=2&b=x%20y', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello body',
    });
    expect(await response.json()).toEqual({
      method: 'POST',
      url: `${origin}/api/echo?a=1&a=2&b=x%20y`,
      body: 'hello body',
      // ASP.NET Core joins a repeated query key's values with ","
      query: { a: '1,2', b: 'x y' },
      contentType: 'text/plain',
    });
    await host.waitFor('stdout', /\] \[echo\] echo called\n/);
  });

  it('converts jsonBody and status through the library', async () => {
    const response = await get('/api/json');
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('x-trace')).toBe('t1');
    expect(await response.json()).toEqual({ ok: true });
    const text = await get('/api/hello');
    expect(text.headers.get('content-type')).toBe('text/plain;charset=UTF-8');
    expect(await text.text()).toBe('hello');
  });

  it('answers 500 with an empty body when a handler throws, logs it and keeps serving', async () => {
    const response = await get('/api/boom');
    expect(response.status).toBe(500);
    expect(await response.text()).toBe('');
    await host.waitFor('stderr', /\[boom\] about to fail\n/);
    await host.waitFor(
      'stderr',
      /Executed 'Functions\.boom' \(Failed, [^\n]*\nError: kaboom: internal detail/,
    );
    expect((await get('/api/hello')).status).toBe(200);
  });

  it('survives an unhandled rejection', async () => {
    expect((await get('/api/floating')).status).toBe(202);
    await host.waitFor('stderr', /Unhandled promise rejection\nError: nobody awaits this/);
    expect((await get('/api/hello')).status).toBe(200);
  });

  it('loads local.settings.json before the app, with the environment winning', async () => {
    const expected = { fromSettings: 'from-settings', overridden: 'from-env' };
    expect(await (await get('/api/env')).json()).toEqual({ atImport: expected, atCall: expected });
  });

  it("runs the app's appStart, preInvocation and postInvocation hooks", async () => {
    expect(await (await get('/api/hooked')).json()).toEqual({
      appStarted: true,
      hookData: { seenBy: 'preInvocation' },
    });
  });

  it('runs a timer function through the admin endpoint', async () => {
    const response = await get('/admin/functions/cleanup', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: '' }),
    });
    expect(response.status).toBe(202);
    await host.waitFor('stdout', /\[cleanup\] cleanup ran: isPastDue=false\n/);
  });

  // FunctionsController.Invoke binds `[FromBody] FunctionInvocation`: MVC answers 415 to a body
  // its JSON formatter does not read, the action 400 to one that binds to nothing, then 404.
  it.each([
    ['no body and no Content-Type', undefined, undefined, 415],
    ['a text/plain body', 'text/plain', '{"input":""}', 415],
    ['an empty JSON body', 'application/json', '', 400],
    ['malformed JSON', 'application/json', '{"input":', 400],
    ['JSON null', 'application/json', 'null', 400],
    ['an unknown function', 'application/json', '{"input":""}', 404],
  ])('refuses POST /admin/functions/<name> with %s', async (_case, type, body, status) => {
    const name = status === 404 ? 'nothing' : 'cleanup';
    const response = await get(`/admin/functions/${name}`, {
      method: 'POST',
      ...(type ? { headers: { 'content-type': type } } : {}),
      ...(body !== undefined ? { body } : {}),
    });
    expect(response.status).toBe(status);
    expect(await response.text()).toBe('');
  });

  it('tries routes in StringComparer.OrdinalIgnoreCase order of function names (FunctionMetadataManager.cs)', async () => {
    expect(await (await get('/api/order/1')).json()).toEqual({ function: 'shadowA' });
  });

  it('gives a catch-all the raw rest of the path and matches no empty segment (RoutePatternMatcher.cs)', async () => {
    expect(await (await get('/api/files/abc/')).json()).toEqual({ path: 'abc/' });
    expect(await (await get('/api/files/a//b/')).json()).toEqual({ path: 'a//b/' });
    expect(await (await get('/api/files/')).json()).toEqual({ path: null });
    for (const path of ['/api/files//abc', '/api/pages//', '/api/items//', '/api//hello']) {
      const response = await get(path);
      expect(response.status, path).toBe(404);
    }
  });

  it('keys the query ignoring case, as ASP.NET Core (KeyValueAccumulator: StringComparer.OrdinalIgnoreCase)', async () => {
    const response = await get('/api/echo?code=x&CODE=y&Code=z&other=1', { method: 'POST' });
    expect(await response.json()).toMatchObject({ query: { code: 'x,y,z', other: '1' } });
  });

  it('keeps a backslash in the path a character of its segment, not a separator (RoutePatternMatcherTest.TryMatch_WithUrlWithStartingBackslash)', async () => {
    const file = await rawTarget(origin, '/api/files/a\\b/c');
    expect(file.status).toBe(200);
    expect(JSON.parse(file.body)).toEqual({ path: 'a\\b/c' });
    expect((await rawTarget(origin, '/api\\hello')).status).toBe(404);
  });

  it('passes a body only when Content-Length > 0: a chunked body arrives empty (GrpcMessageConversionExtensions.ToRpcHttp)', async () => {
    const chunked = await rawRequest(origin, 'POST', '/api/framing', ['abc', 'def'], {
      'content-type': 'text/plain',
    });
    expect(chunked.status).toBe(200);
    expect(JSON.parse(chunked.body)).toEqual({
      body: '',
      contentLength: null,
      transferEncoding: 'chunked',
      repeated: null,
    });
    const sized = await rawRequest(origin, 'PUT', '/api/framing', ['abcdef'], {
      'Content-Type': 'text/plain',
      'Content-Length': '6',
      'X-Repeated': ['a', 'b'],
    });
    // Headers lower-cased, a repeated one as StringValues.ToString(): joined with ",".
    expect(JSON.parse(sized.body)).toEqual({
      body: 'abcdef',
      contentLength: '6',
      transferEncoding: null,
      repeated: 'a,b',
    });
  });

  it('answers 500 and runs no function for a declared body over 100 MB (Program.cs MaxRequestBodySize, azure-functions-host#10519)', async () => {
    const response = await rawRequest(origin, 'POST', '/api/framing', undefined, {
      'content-type': 'text/plain',
      'content-length': String(104_857_601),
    });
    expect(response.status).toBe(500);
    expect(response.headers.connection).toBe('close');
    await host.waitFor(
      'stderr',
      /Request body too large\. The max request body size is 104857600 bytes/,
    );
  });

  it('answers a CORS preflight 204 before routing, as Flex Consumption (JobHostCorsMiddleware.cs)', async () => {
    const preflight = {
      origin: 'https://elsewhere.example',
      'access-control-request-method': 'PUT',
    };
    for (const path of ['/api/any', '/api/nothing', '/api/hello']) {
      const response = await get(path, { method: 'OPTIONS', headers: preflight });
      expect(response.status, path).toBe(204);
      expect(await response.text()).toBe('');
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
    }
    // Not a preflight: routed as any request.
    const plain = await get('/api/any', {
      method: 'OPTIONS',
      headers: { origin: preflight.origin },
    });
    expect(await plain.json()).toEqual({ function: 'anyMethod', method: 'OPTIONS' });
  });

  it('answers exactly / that no function takes with the home page, any method (HomepageMiddleware.cs)', async () => {
    for (const method of ['GET', 'POST', 'DELETE']) {
      const response = await get('/?x=1', { method });
      expect(response.status, method).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html');
      expect(await response.text()).toBe(HOME_PAGE);
    }
    // The preflight's 204 is overwritten too: the home page middleware runs outside the CORS one.
    const preflight = await get('/', {
      method: 'OPTIONS',
      headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.status).toBe(200);
    expect((await get('//')).status).toBe(404);
  });

  it('keeps the last of two Set-Cookie headers: the library maps headers one value per name (toRpcHttp.ts)', async () => {
    const response = await get('/api/twoSetCookieHeaders');
    expect(response.headers.getSetCookie()).toEqual(['second=2; Path=/']);
  });

  it('reports a port in use in one line', async () => {
    const port = new URL(origin).port;
    const second = runCli(appDir, { PORT: port });
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toBe(
      `Error: Port ${port} is unavailable. Close the process using that port, or set PORT to another port.\n`,
    );
  });
});

describe('local host CLI lifecycle', () => {
  let appDir: string;
  beforeAll(() => {
    appDir = fixtureCopy();
  });
  afterAll(() => rmSync(appDir, { recursive: true, force: true }));

  it("reports an app that fails to load with the app's message and no stack", async () => {
    const run = runCli(appDir, { PORT: String(await freePort()), FAIL_AT_IMPORT: '1' });
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toBe(
      'Error: the function app did not load: functions/misc.js: Invalid settings: CLIENT_ID is missing, SESSION_KEYS is not base64\n',
    );
  });

  it('applies FUNCTIONS_REQUEST_BODY_SIZE_LIMIT and AzureWebJobsDisableHomepage (HttpRequestBodySizeMiddleware.cs, HomepageMiddleware.cs)', async () => {
    const run = runCli(appDir, {
      PORT: String(await freePort()),
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '10',
      AzureWebJobsDisableHomepage: 'True',
    });
    try {
      const [, origin = ''] = await run.waitFor('stdout', listening);
      const post = (body: string) =>
        fetch(`${origin}/api/framing`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body,
        });
      expect(await (await post('0123456789')).json()).toMatchObject({ body: '0123456789' });
      expect((await post('0123456789a')).status).toBe(500);
      // Never read, so never over the limit.
      const chunked = await rawRequest(
        origin,
        'POST',
        '/api/framing',
        ['0123456789', 'abcdef'],
        {},
      );
      expect(JSON.parse(chunked.body)).toMatchObject({ body: '' });
      const home = await fetch(`${origin}/`);
      expect(home.status).toBe(204);
      expect(await home.text()).toBe('');
    } finally {
      run.kill('SIGKILL');
      await run.exited;
    }
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'exits cleanly on %s, keep-alive connections included',
    async (signal) => {
      const run = runCli(appDir, { PORT: String(await freePort()) });
      const [, origin] = await run.waitFor('stdout', listening);
      // fetch keeps its connection alive: close() must not wait for it to time out.
      expect((await fetch(`${origin}/api/hello`)).status).toBe(200);
      run.kill(signal);
      expect(await run.exited).toBe(0);
      await expect(fetch(`${origin}/api/hello`)).rejects.toThrow();
    },
  );
});
