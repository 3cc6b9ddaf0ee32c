// A counting HTTP proxy in front of Azurite's table endpoint: an app process whose
// TOKEN_CACHE_STORAGE points here has every Table Storage round trip counted, by kind.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TableCounts {
  /** Every request: one round trip each (a $batch is one round trip). */
  roundTrips: number;
  /** GET of one entity: `table(PartitionKey='…',RowKey='…')`. */
  pointReads: number;
  /** GET of a query (`$filter`, `$select`, or the whole table). */
  queries: number;
  /** POST, PUT, MERGE, PATCH and DELETE of entities, and $batch. */
  writes: number;
  /** Table creation and other service requests (`/Tables`). */
  tableOps: number;
  /** Answers by status code. */
  byStatus: Record<string, number>;
  /** Each round trip's time through the proxy to Azurite and back, ms. */
  durationsMs: number[];
}

export interface TableMeter {
  /** The table endpoint to give the app (same account path as Azurite's). */
  readonly tableEndpoint: string;
  counts(): TableCounts;
  reset(): void;
  close(): Promise<void>;
}

function emptyCounts(): TableCounts {
  return {
    roundTrips: 0,
    pointReads: 0,
    queries: 0,
    writes: 0,
    tableOps: 0,
    byStatus: {},
    durationsMs: [],
  };
}

/** Starts the proxy on a free loopback port, forwarding to `azuriteTableEndpoint`. */
export async function startTableMeter(azuriteTableEndpoint: string): Promise<TableMeter> {
  const upstream = new URL(azuriteTableEndpoint);
  const agent = new http.Agent({ keepAlive: true });
  let counts = emptyCounts();

  const server = http.createServer((incoming, outgoing) => {
    const started = performance.now();
    const url = incoming.url ?? '/';
    const method = incoming.method ?? 'GET';
    const path = decodeURIComponent(url.split('?')[0] ?? '');
    counts.roundTrips += 1;
    if (/\/Tables(\(|$)/.test(path)) counts.tableOps += 1;
    else if (method === 'GET' && /\(PartitionKey=.*,RowKey=.*\)$/.test(path))
      counts.pointReads += 1;
    else if (method === 'GET') counts.queries += 1;
    else counts.writes += 1;

    const forwarded = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method,
        path: url,
        headers: incoming.headers,
        agent,
      },
      (answer) => {
        const status = String(answer.statusCode ?? 0);
        counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
        outgoing.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(outgoing);
        answer.on('end', () => counts.durationsMs.push(performance.now() - started));
      },
    );
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    tableEndpoint: `http://127.0.0.1:${port}${upstream.pathname}`,
    counts: () => structuredClone(counts),
    reset: () => {
      counts = emptyCounts();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
