import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

export interface AppProcessOptions {
  readonly port: number;
  /** The function app's folder (package.json `main` is loaded from it); default: this project. */
  readonly cwd?: string;
  /** Settings and other variables for the app; added to this process's environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Receives every line the app writes (its logs). */
  readonly onOutput?: (line: string) => void;
}

export interface AppProcess {
  readonly origin: string;
  readonly pid: number;
  /** Everything the app wrote so far. */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs the built app on the local host in a child process of its own, as `npm run start:local`
 * does, and resolves once it listens.
 */
export async function startAppProcess(options: AppProcessOptions): Promise<AppProcess> {
  const child = spawn(process.execPath, [path.join(root, 'dev/local-host/cli.mts')], {
    cwd: options.cwd ?? root,
    env: { ...process.env, ...options.env, PORT: String(options.port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listening = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      for (const line of text.split('\n')) if (line !== '') options.onOutput?.(line);
      if (/listening on http/i.test(output)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`the app exited with code ${code} before it listened:\n${output.trim()}`)),
    );
  });
  await listening;
  return {
    origin: `http://localhost:${options.port}`,
    pid: child.pid ?? 0,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}
