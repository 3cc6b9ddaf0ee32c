import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tableConnectionString, type Azurite } from '../../../dev/azurite.mts';

/** What a write passing the proxy is: its method, path and whole body as the client sent them. */
export interface PendingWrite {
  readonly method: string;
  readonly path: string;
  readonly body: Buffer;
  readonly conditional: boolean;
}

/**
 * What to do with a write: pass it on, or `cut` it: send Azurite the request line, headers and
 * only the first half of the body, then drop both connections, as when the writer's process or
 * the network dies in the middle of the upload.
 */
export type WriteDecision = 'forward' | 'cut';

/**
 * A pass-through HTTP proxy in front of Azurite's table endpoint that counts requests and answers
 * (the 412s of lost races among them), and can cut a write in half.
 */
export class TableProxy {
  readonly counts = {
    requests: 0,
    writes: 0,
    conditionalWrites: 0,
    preconditionFailed: 0,
    cut: 0,
    byStatus: {} as Record<string, number>,
  };
  /** Called for each write before it is forwarded. */
  onWrite: ((write: PendingWrite) => WriteDecision | Promise<WriteDecision>) | undefined;
  private readonly server: http.Server;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly target: () => { host: string; port: number };
  private port = 0;

  /** `target` is read for every request, so Azurite may move (restart) behind the proxy. */
  constructor(target: () => { host: string; port: number }) {
    this.target = target;
    this.server = http.createServer((request, response) => {
      this.handle(request, response).catch(() => response.destroy());
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The connection string an app uses to reach Azurite through this proxy. */
  get connectionString(): string {
    return tableConnectionString(`http://127.0.0.1:${this.port}/devstoreaccount1`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.agent.destroy();
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const method = request.method ?? 'GET';
    const path = request.url ?? '/';
    this.counts.requests += 1;
    const isWrite = ['PUT', 'POST', 'MERGE', 'PATCH', 'DELETE'].includes(method);
    const conditional = request.headers['if-match'] !== undefined;
    let decision: WriteDecision = 'forward';
    if (isWrite) {
      this.counts.writes += 1;
      if (conditional) this.counts.conditionalWrites += 1;
      decision = (await this.onWrite?.({ method, path, body, conditional })) ?? 'forward';
    }
    const { host, port } = this.target();
    const upstream = http.request({
      host,
      port,
      method,
      path,
      headers: request.headers,
      agent: decision === 'cut' ? false : this.agent,
    });
    if (decision === 'cut') {
      this.counts.cut += 1;
      upstream.on('error', () => undefined);
      upstream.write(body.subarray(0, Math.floor(body.length / 2)));
      // Let the half reach Azurite, then drop both connections mid-request.
      await new Promise((resolve) => setTimeout(resolve, 50));
      upstream.destroy();
      response.destroy();
      return;
    }
    upstream.on('response', (answer) => {
      const status = answer.statusCode ?? 0;
      this.counts.byStatus[status] = (this.counts.byStatus[status] ?? 0) + 1;
      if (status === 412) this.counts.preconditionFailed += 1;
      response.writeHead(status, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    upstream.end(body);
  }
}

/** One proxy per app process in front of the same Azurite, so each process's table traffic is its own. */
export function proxiesFor(azurite: Azurite, count: number): Promise<TableProxy[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      new TableProxy(() => ({ host: '127.0.0.1', port: azurite.tablePort })).listen(),
    ),
  );
}
