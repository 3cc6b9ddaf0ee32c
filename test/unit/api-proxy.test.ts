import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/lib/config.ts';
import type { Session } from '../../src/lib/auth/session-store.ts';
import { createApiProxyHandler } from '../../src/lib/proxy/api-proxy.ts';

// The relay rules of `todos` (JSON bodies, its item paths) for answers the sample API never gives,
// against a stub API whose next answer each test sets.
let next: (response: http.ServerResponse) => void;
let server: http.Server;
let endpoint: string;

beforeAll(async () => {
  server = http.createServer((_request, response) => next(response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/todolist`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const session = { homeAccountId: 'oid.tid' } as Session;

function proxy(acquireToken = () => Promise.resolve({ accessToken: 'at', expiresOn: null })) {
  const config = loadConfig({
    AUTHORITY: 'https://login.example/tenant/',
    CLIENT_ID: 'client',
    CLIENT_SECRET: 'secret',
    REDIRECT_URI: 'http://localhost:7071/auth/redirect',
    POST_LOGOUT_REDIRECT_URI: 'http://localhost:7071/',
    TODOLIST_ENDPOINT: endpoint,
    TODOLIST_READ: 'api://api/ToDoList.Read',
    TODOLIST_READWRITE: 'api://api/ToDoList.ReadWrite',
    TOKEN_CACHE_STORAGE: 'UseDevelopmentStorage=true',
    TOKEN_CACHE_KEYS: Buffer.alloc(32, 1).toString('base64'),
    SESSION_KEYS: Buffer.alloc(32, 2).toString('base64'),
  });
  return createApiProxyHandler(
    {
      tokenService: { acquireToken },
      sessions: { resolve: () => Promise.resolve(session), delete: () => Promise.resolve() },
    },
    config.downstreamApis[0]!,
  );
}

async function call(
  answer: (response: http.ServerResponse) => void,
  handler = proxy(),
  method = 'POST',
): Promise<HttpResponseInit & { headers: Record<string, string> }> {
  next = answer;
  const request = new HttpRequest({
    method,
    url: 'http://localhost:7071/api/todos',
    headers: { 'x-csrf': '1', 'content-type': 'application/json' },
    ...(method === 'POST' ? { body: { string: '{"description":"d"}' } } : {}),
  });
  const response = await handler(request, new InvocationContext({ logHandler: () => undefined }));
  return response as HttpResponseInit & { headers: Record<string, string> };
}

describe('the proxy relays', () => {
  it('a 201 with its JSON body, its Location rewritten, and none of the API’s other headers', async () => {
    const response = await call((res) =>
      res
        .writeHead(201, {
          'Content-Type': 'application/json; charset=utf-8',
          Location: '/api/todolist/new-id',
          'Set-Cookie': 'api=1',
          'WWW-Authenticate': 'Bearer',
          'Access-Control-Allow-Origin': '*',
          'X-Powered-By': 'api',
        })
        .end('{"id":"new-id"}'),
    );
    expect(response.status).toBe(201);
    expect(response.body).toBe('{"id":"new-id"}');
    expect(response.headers).toEqual({
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Content-Type': 'application/json',
      Location: '/api/todos/new-id',
    });
    expect(response.cookies).toBeUndefined();
  });

  it.each([
    'https://evil.example/api/todolist/x',
    '/elsewhere/x',
    '/api/todolist/..%2Fx',
    '/api/todolist/a/b',
  ])('no Location for %s', async (location) => {
    const response = await call((res) =>
      res.writeHead(201, { 'Content-Type': 'application/json', Location: location }).end('{}'),
    );
    expect(response.headers.Location).toBeUndefined();
  });

  it('a redirect as 502, never followed', async () => {
    const response = await call((res) =>
      res.writeHead(307, { Location: 'https://evil.example/' }).end(),
    );
    expect(response.status).toBe(502);
    expect(response.headers.Location).toBeUndefined();
  });

  it('a success that is not JSON as 502', async () => {
    const response = await call((res) =>
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<h1>hi</h1>'),
    );
    expect(response.status).toBe(502);
    expect(response.headers['Content-Type']).toBe('application/problem+json');
  });

  it('an error without JSON as a problem with its status, and a bad Retry-After dropped', async () => {
    const response = await call((res) =>
      res.writeHead(503, { 'Content-Type': 'text/html', 'Retry-After': 'soon' }).end('<h1>x</h1>'),
    );
    expect(response.status).toBe(503);
    expect(response.headers['Content-Type']).toBe('application/problem+json');
    expect(response.headers['Retry-After']).toBeUndefined();
    expect(JSON.parse(response.body as string)).toMatchObject({ status: 503 });
  });

  it('an HTTP-date Retry-After on 429', async () => {
    const date = new Date(Date.now() + 60_000).toUTCString();
    const response = await call((res) =>
      res
        .writeHead(429, { 'Content-Type': 'application/problem+json', 'Retry-After': date })
        .end('{"title":"slow down"}'),
    );
    expect(response.headers['Retry-After']).toBe(date);
    expect(response.headers['Content-Type']).toBe('application/problem+json');
  });

  it('an unexpected failure as a 500 problem without its message or stack', async () => {
    const failing = proxy(() => Promise.reject(new Error('secret detail at /app/x.js:1:2')));
    const response = await call(() => undefined, failing, 'GET');
    expect(response.status).toBe(500);
    expect(response.body as string).not.toMatch(/secret|x\.js/);
  });
});
