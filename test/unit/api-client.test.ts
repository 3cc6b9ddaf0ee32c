import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient, ApiTimeoutError, ApiUnreachableError } from '../../src/lib/proxy/api-client.ts';

interface TestServer {
  readonly origin: string;
  readonly connections: () => number;
  readonly requests: http.IncomingMessage[];
  close(): Promise<void>;
}

const servers: TestServer[] = [];

async function serve(
  handle: (request: http.IncomingMessage, response: http.ServerResponse, index: number) => void,
): Promise<TestServer> {
  const requests: http.IncomingMessage[] = [];
  let connections = 0;
  const server = http.createServer((request, response) => {
    requests.push(request);
    handle(request, response, requests.length);
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const testServer: TestServer = {
    origin: `http://127.0.0.1:${port}`,
    connections: () => connections,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(testServer);
  return testServer;
}

function json(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json' }).end(text);
}

const request = {
  method: 'GET',
  target: { path: '', query: '' },
  headers: { accept: 'application/json' },
  body: undefined,
  accessToken: 'at',
} as const;

/** A client as `todos` gets it: answers over 1 MiB refused. */
function clientFor(url: string, timeoutMs = 2000): ApiClient {
  return new ApiClient({ name: 'todos', url, timeoutMs, maxResponseBytes: 1024 * 1024 });
}

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

describe('ApiClient', () => {
  it('reuses one kept-alive connection across requests', async () => {
    const api = await serve((_request, response) => json(response, 200, []));
    const client = clientFor(`${api.origin}/api/todolist`);
    for (let index = 0; index < 5; index += 1) {
      expect((await client.send(request)).status).toBe(200);
    }
    expect(api.requests).toHaveLength(5);
    expect(api.connections()).toBe(1);
  });

  it('builds the URL from the endpoint and the checked target only, and sends only the headers given', async () => {
    const api = await serve((_request, response) => json(response, 200, {}));
    const client = clientFor(`${api.origin}/api/todolist`);
    await client.send({ ...request, target: { path: '/a-b_C9', query: '' } });
    await client.send({
      ...request,
      method: 'PUT',
      target: { path: '/x', query: '' },
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ description: 'd' })),
    });
    expect(api.requests.map(({ method, url }) => `${method} ${url}`)).toEqual([
      'GET /api/todolist/a-b_C9',
      'PUT /api/todolist/x',
    ]);
    expect(api.requests[1]?.headers).toMatchObject({
      authorization: 'Bearer at',
      accept: 'application/json',
      'content-type': 'application/json',
    });
    expect(api.requests[0]?.headers['user-agent']).toBeUndefined();
    expect(Object.keys(api.requests[1]?.headers ?? {}).sort()).toEqual([
      'accept',
      'authorization',
      'connection',
      'content-length',
      'content-type',
      'host',
    ]);
  });

  it('sends any method with its body and query, HEAD too, and hands back every single-valued header', async () => {
    const api = await serve((incoming, response) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () =>
        response
          .writeHead(200, {
            'Content-Type': 'text/plain',
            ETag: '"e"',
            'Set-Cookie': ['a=1', 'b=2'],
          })
          .end(`${incoming.method} ${Buffer.concat(chunks).toString()}`),
      );
    });
    const client = clientFor(`${api.origin}/v1`);
    for (const method of ['POST', 'PATCH', 'DELETE'] as const) {
      const answer = await client.send({
        ...request,
        method,
        target: { path: '/a%20b', query: '?x=1' },
        body: Buffer.from(`body of ${method}`),
      });
      expect(answer.body.toString()).toBe(`${method} body of ${method}`);
    }
    const head = await client.send({ ...request, method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toHaveLength(0);
    expect(head.headers).toMatchObject({ 'content-type': 'text/plain', etag: '"e"' });
    expect(head.headers['set-cookie']).toBeUndefined();
    expect(api.requests.map(({ method, url }) => `${method} ${url}`)).toEqual([
      'POST /v1/a%20b?x=1',
      'PATCH /v1/a%20b?x=1',
      'DELETE /v1/a%20b?x=1',
      'HEAD /v1',
    ]);
  });

  it('hands a redirect back instead of following it', async () => {
    const elsewhere = await serve((_request, response) => json(response, 200, {}));
    const api = await serve((_request, response) =>
      response.writeHead(302, { Location: `${elsewhere.origin}/steal` }).end(),
    );
    const client = clientFor(`${api.origin}/api/todolist`);
    const answer = await client.send(request);
    expect(answer.status).toBe(302);
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('ignores HTTP_PROXY and friends: requests go to the endpoint only', async () => {
    const proxy = await serve((_request, response) => json(response, 200, ['from the proxy']));
    const api = await serve((_request, response) => json(response, 200, []));
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy };
    process.env.HTTP_PROXY = proxy.origin;
    process.env.http_proxy = proxy.origin;
    try {
      const client = clientFor(`${api.origin}/api/todolist`);
      expect((await client.send(request)).body.toString()).toBe('[]');
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    expect(proxy.requests).toHaveLength(0);
  });

  it('has one deadline for the whole exchange, even against a server that trickles', async () => {
    const api = await serve((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.write('[');
      const timer = setInterval(() => response.write(' '), 50);
      response.on('close', () => clearInterval(timer));
    });
    const client = clientFor(`${api.origin}/api/todolist`, 400);
    const started = performance.now();
    await expect(client.send(request)).rejects.toBeInstanceOf(ApiTimeoutError);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('retries an idempotent call once on a kept-alive connection the server dropped', async () => {
    // The second request finds its reused connection reset, as when a server closes it while idle.
    const api = await serve((request, response, index) => {
      if (index === 2) request.socket.destroy();
      else json(response, 200, [index]);
    });
    const client = clientFor(`${api.origin}/api/todolist`);
    await client.send(request);
    expect((await client.send(request)).body.toString()).toBe('[3]');

    // A POST is not replayed: the API may have acted on it.
    const post = await serve((request, response, index) => {
      if (index === 2) request.socket.destroy();
      else json(response, 201, {});
    });
    const writer = clientFor(`${post.origin}/api/todolist`);
    const create = {
      ...request,
      method: 'POST',
      body: Buffer.from(JSON.stringify({ description: 'd' })),
    } as const;
    await writer.send(create);
    await expect(writer.send(create)).rejects.toBeInstanceOf(ApiUnreachableError);
    expect(post.requests).toHaveLength(2);
  });

  it('retries on a new connection, not on another pooled one the server dropped too', async () => {
    // Two connections kept alive from one burst, both closed by the server when the next call
    // comes (as a server closes connections idle since the same moment): the retry must not take
    // the second stale one from the pool.
    let release: () => void = () => undefined;
    const burst = new Promise<void>((resolve) => (release = resolve));
    const sockets = new Set<unknown>();
    const api = await serve((request, response, index) => {
      if (index <= 2) {
        sockets.add(request.socket);
        // Both answers wait for the second request, so the client opens two connections.
        if (index === 2) release();
        void burst.then(() => json(response, 200, [index]));
      } else if (sockets.has(request.socket)) {
        request.socket.destroy();
      } else {
        json(response, 200, [index]);
      }
    });
    const client = clientFor(`${api.origin}/api/todolist`);
    await Promise.all([client.send(request), client.send(request)]);
    expect(api.connections()).toBe(2);
    const answer = await client.send(request);
    expect(answer.status).toBe(200);
    expect(api.connections()).toBe(3);
    // The first try reached one of the two pooled connections, the retry a new one.
    expect(api.requests).toHaveLength(4);
  });

  it('refuses an answer over 1 MiB instead of buffering it', async () => {
    const api = await serve((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(Buffer.alloc(1024 * 1024 + 1, 0x20));
    });
    const client = clientFor(`${api.origin}/api/todolist`);
    await expect(client.send(request)).rejects.toBeInstanceOf(ApiUnreachableError);
    const fits = await serve((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(Buffer.alloc(1024 * 1024, 0x20));
    });
    const fitting = clientFor(`${fits.origin}/api/todolist`);
    expect((await fitting.send(request)).body.length).toBe(1024 * 1024);
  });
});
