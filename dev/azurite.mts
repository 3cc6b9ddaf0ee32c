import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { findFreePort } from './ports.mts';

const require = createRequire(import.meta.url);

/** Azurite's well-known development account: public, documented, not a secret. */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /** Table port; 0 picks a free one. Default 0. */
  readonly tablePort?: number;
  /** Also run the blob and queue services (the Functions host needs them). */
  readonly allServices?: boolean;
  /** With allServices: the blob and queue ports; default 10000 and 10001, Azurite's own. */
  readonly blobPort?: number;
  readonly queuePort?: number;
  /** Keep data in this folder; without it data lives in memory and is gone when Azurite stops. */
  readonly location?: string;
  /** Where Azurite's own output goes; default: discarded. */
  readonly onOutput?: (line: string) => void;
}

export interface Azurite {
  readonly tablePort: number;
  readonly tableEndpoint: string;
  /** A full connection string for the table endpoint (works on any port). */
  readonly connectionString: string;
  /** Settles when Azurite exits, whoever stopped it. */
  readonly exited: Promise<void>;
  /** Stops Azurite and waits for it to exit. */
  stop(): Promise<void>;
}

export function tableConnectionString(tableEndpoint: string): string {
  return `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};TableEndpoint=${tableEndpoint};`;
}

function waitForListening(
  child: ChildProcess,
  services: number,
  onOutput?: (line: string) => void,
) {
  return new Promise<void>((resolve, reject) => {
    let listening = 0;
    let output = '';
    const onLine = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      for (const line of text.split('\n')) {
        if (line.trim() !== '') onOutput?.(line);
        if (/successfully (?:listening|started)/i.test(line)) listening += 1;
      }
      if (listening >= services) resolve();
    };
    child.stdout?.on('data', onLine);
    child.stderr?.on('data', onLine);
    child.once('exit', (code) =>
      reject(new Error(`Azurite exited with code ${code} before it listened:\n${output.trim()}`)),
    );
  });
}

/** A connection string for Azurite's blob, queue and table services on these ports. */
export function storageConnectionString(ports: { blob: number; queue: number; table: number }) {
  const endpoint = (service: string, port: number) =>
    `${service}Endpoint=http://127.0.0.1:${port}/${ACCOUNT};`;
  return (
    `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};` +
    endpoint('Blob', ports.blob) +
    endpoint('Queue', ports.queue) +
    endpoint('Table', ports.table)
  );
}

/** Starts a real Azurite as a child process and resolves once its services listen. */
export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const tablePort = options.tablePort || (await findFreePort());
  const entry = options.allServices
    ? 'azurite/dist/src/azurite.js'
    : 'azurite/dist/src/table/main.js';
  const args = [require.resolve(entry), '--tablePort', String(tablePort), '--disableTelemetry'];
  if (options.allServices) {
    args.push('--blobPort', String(options.blobPort ?? 10000));
    args.push('--queuePort', String(options.queuePort ?? 10001));
  }
  args.push(...(options.location ? ['--location', options.location] : ['--inMemoryPersistence']));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForListening(child, options.allServices ? 3 : 1, options.onOutput);
  } catch (error) {
    child.kill();
    throw error;
  }
  const tableEndpoint = `http://127.0.0.1:${tablePort}/${ACCOUNT}`;
  return {
    tablePort,
    tableEndpoint,
    connectionString: tableConnectionString(tableEndpoint),
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
