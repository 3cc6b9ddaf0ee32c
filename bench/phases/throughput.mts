// 3. Throughput: signed-in users spread over the app processes, at several concurrencies, each for
// a fixed time. Every answer other than 200 and every request without an answer is an error.
import { HttpClient } from '../http.mts';
import { getTodos, runLoad, type SignedInUser } from '../load.mts';
import { coresUsed, cpuSeconds, type AppInstance } from '../stack.mts';
import { summarize, type Summary } from '../stats.mts';

export interface ThroughputLevel {
  readonly concurrency: number;
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly errors: number;
  readonly byStatus: Record<string, number>;
  readonly firstFailure: string | undefined;
  readonly latencyMs: Summary;
  /** CPU cores each process used on average during the level (2 cores in all here). */
  readonly cores: Record<string, number>;
}

/** Request i: user i mod U, on a process that shifts every round over the users. */
export function spread<T>(items: readonly T[], index: number, round: number): T {
  return items[(index + round) % items.length] as T;
}

export async function measureThroughput(options: {
  apps: readonly AppInstance[];
  users: readonly SignedInUser[];
  concurrencies: readonly number[];
  seconds: number;
  warmupRequests: number;
  log: (message: string) => void;
}): Promise<ThroughputLevel[]> {
  const { apps, users } = options;
  const client = new HttpClient();
  const send = (index: number) =>
    getTodos(
      client,
      spread(apps, index, Math.floor(index / users.length)),
      users[index % users.length] as SignedInUser,
    );
  const levels: ThroughputLevel[] = [];
  try {
    options.log(`throughput: warm-up, ${options.warmupRequests} requests at concurrency 16`);
    await runLoad({ concurrency: 16, total: options.warmupRequests, send });
    for (const concurrency of options.concurrencies) {
      options.log(`throughput: concurrency ${concurrency} for ${options.seconds} s`);
      const cpuBefore = cpuSeconds();
      const result = await runLoad({ concurrency, durationMs: options.seconds * 1000, send });
      const cores = coresUsed(cpuBefore, cpuSeconds(), result.elapsedMs / 1000);
      const errors =
        result.failures +
        Object.entries(result.byStatus)
          .filter(([status]) => status !== '200')
          .reduce((sum, [, count]) => sum + count, 0);
      const seconds = result.elapsedMs / 1000;
      levels.push({
        concurrency,
        requests: result.requests,
        seconds,
        requestsPerSecond: result.requests / seconds,
        errors,
        byStatus: result.byStatus,
        firstFailure: result.firstFailure,
        latencyMs: summarize(result.latencies),
        cores,
      });
      options.log(
        `throughput: concurrency ${concurrency}: ${Math.round(result.requests / seconds)} req/s, ${errors} errors`,
      );
    }
  } finally {
    client.close();
  }
  return levels;
}
