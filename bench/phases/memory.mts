// 6. Memory: RSS (VmRSS from /proc/<pid>/status) of one app process sampled while it serves a long
// run of requests spread over many users.
import { HttpClient } from '../http.mts';
import { getTodos, runLoad, type SignedInUser } from '../load.mts';
import type { AppInstance } from '../stack.mts';
import { slope } from '../stats.mts';

export interface MemorySample {
  readonly requests: number;
  readonly rssBytes: number;
}

export interface MemoryResult {
  readonly requests: number;
  readonly users: number;
  readonly concurrency: number;
  readonly seconds: number;
  readonly errors: number;
  readonly samples: MemorySample[];
  readonly rssStartMiB: number;
  /** After 20,000 requests (half the run if shorter): the process is warm. */
  readonly warmAtRequests: number;
  readonly rssWarmMiB: number;
  readonly rssEndMiB: number;
  readonly rssMaxMiB: number;
  readonly growthAfterWarmMiB: number;
  /** Least-squares slope of RSS over requests once warm, bytes per request. */
  readonly bytesPerRequestAfterWarm: number;
}

const MiB = 1024 * 1024;
export const WARM_REQUESTS = 20_000;

export async function measureMemory(options: {
  app: AppInstance;
  users: readonly SignedInUser[];
  requests: number;
  concurrency: number;
  log: (message: string) => void;
}): Promise<MemoryResult> {
  const { app, users } = options;
  const client = new HttpClient();
  const step = Math.max(1, Math.floor(options.requests / 20));
  const samples: MemorySample[] = [{ requests: 0, rssBytes: app.rss() }];
  try {
    const result = await runLoad({
      concurrency: options.concurrency,
      total: options.requests,
      send: (index) => getTodos(client, app, users[index % users.length] as SignedInUser),
      progressEvery: step,
      onProgress: (done) => {
        const rssBytes = app.rss();
        samples.push({ requests: done, rssBytes });
        if (done % (step * 4) === 0 || done === options.requests) {
          options.log(
            `memory: ${done}/${options.requests} requests, RSS ${(rssBytes / MiB).toFixed(1)} MiB`,
          );
        }
      },
    });
    if (samples.at(-1)?.requests !== result.requests) {
      samples.push({ requests: result.requests, rssBytes: app.rss() });
    }
    // Warm: 20,000 requests in (20 % of the full run of 100,000), or half a shorter run.
    const warmAt = Math.min(WARM_REQUESTS, options.requests / 2);
    const warm = samples.find((sample) => sample.requests >= warmAt) ?? samples[0];
    const end = samples.at(-1);
    const afterWarm = samples.filter((sample) => sample.requests >= warmAt);
    const errors =
      result.failures +
      Object.entries(result.byStatus)
        .filter(([status]) => status !== '200')
        .reduce((sum, [, count]) => sum + count, 0);
    return {
      requests: result.requests,
      users: users.length,
      concurrency: options.concurrency,
      seconds: result.elapsedMs / 1000,
      errors,
      samples,
      rssStartMiB: (samples[0]?.rssBytes ?? 0) / MiB,
      warmAtRequests: warm?.requests ?? 0,
      rssWarmMiB: (warm?.rssBytes ?? 0) / MiB,
      rssEndMiB: (end?.rssBytes ?? 0) / MiB,
      rssMaxMiB: Math.max(...samples.map((sample) => sample.rssBytes)) / MiB,
      growthAfterWarmMiB: ((end?.rssBytes ?? 0) - (warm?.rssBytes ?? 0)) / MiB,
      bytesPerRequestAfterWarm: slope(
        afterWarm.map((sample) => ({ x: sample.requests, y: sample.rssBytes })),
      ),
    };
  } finally {
    client.close();
  }
}
