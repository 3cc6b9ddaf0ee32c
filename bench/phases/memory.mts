// 6. Memory of one app process while it serves a long run of requests spread over many users: its
// RSS (VmRSS from /proc/<pid>/status), and its live heap after each of its own full collections
// (through the inspector).
import { HttpClient } from '../http.mts';
import { LiveHeapWatch } from '../live-heap.mts';
import { getTodos, runLoad, type SignedInUser } from '../load.mts';
import type { AppInstance } from '../stack.mts';
import { slope } from '../stats.mts';

export interface MemorySample {
  readonly requests: number;
  readonly rssBytes: number;
}

export interface LiveHeapSample {
  /** Requests answered by the time the note was collected (within 5 % of the run). */
  readonly requests: number;
  /** V8's used heap just after one of the process's own full collections. */
  readonly liveBytes: number;
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
  readonly rssGrowthAfterWarmMiB: number;
  /** Least-squares slope of RSS over requests once warm, bytes per request. */
  readonly rssBytesPerRequestAfterWarm: number;
  /** Every full collection from the warm point on. */
  readonly liveHeapSamples: LiveHeapSample[];
  /** The smallest live heap in the first quarter of the run once warm. */
  readonly liveHeapWarmMiB: number | undefined;
  /** The smallest live heap in the last quarter of the run. */
  readonly liveHeapEndMiB: number | undefined;
  /** The budgeted figure: what the process holds at the end beyond what it held once warm. */
  readonly liveHeapGrowthAfterWarmMiB: number | undefined;
  /** Least-squares slope of the live heap over requests once warm, bytes per request. */
  readonly liveHeapBytesPerRequestAfterWarm: number;
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
  const inspectorUrl = app.inspectorUrl;
  if (inspectorUrl === undefined) throw new Error('memory: the app must run with its inspector');
  const client = new HttpClient();
  const step = Math.max(1, Math.floor(options.requests / 20));
  // Warm: 20,000 requests in (20 % of the full run of 100,000), or half a shorter run.
  const warmAt = Math.min(WARM_REQUESTS, options.requests / 2);
  const samples: MemorySample[] = [{ requests: 0, rssBytes: app.rss() }];
  const liveHeapSamples: LiveHeapSample[] = [];
  const watch = await LiveHeapWatch.attach(inspectorUrl);
  let notesTaken: Promise<void> = Promise.resolve();
  const takeNotes = (requests: number) => {
    notesTaken = notesTaken.then(async () => {
      const notes = await watch.take();
      if (requests < warmAt) return;
      for (const liveBytes of notes) liveHeapSamples.push({ requests, liveBytes });
    });
  };
  try {
    const result = await runLoad({
      concurrency: options.concurrency,
      total: options.requests,
      send: (index) => getTodos(client, app, users[index % users.length] as SignedInUser),
      progressEvery: step,
      onProgress: (done) => {
        const rssBytes = app.rss();
        samples.push({ requests: done, rssBytes });
        takeNotes(done);
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
    await notesTaken;
    const quarter = (options.requests - warmAt) / 4;
    const smallestIn = (from: number, to: number) => {
      const inWindow = liveHeapSamples.filter((s) => s.requests >= from && s.requests <= to);
      return inWindow.length === 0 ? undefined : Math.min(...inWindow.map((s) => s.liveBytes));
    };
    const liveWarm = smallestIn(warmAt, warmAt + quarter);
    const liveEnd = smallestIn(options.requests - quarter, options.requests);
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
      rssGrowthAfterWarmMiB: ((end?.rssBytes ?? 0) - (warm?.rssBytes ?? 0)) / MiB,
      rssBytesPerRequestAfterWarm: slope(
        afterWarm.map((sample) => ({ x: sample.requests, y: sample.rssBytes })),
      ),
      liveHeapSamples,
      liveHeapWarmMiB: liveWarm === undefined ? undefined : liveWarm / MiB,
      liveHeapEndMiB: liveEnd === undefined ? undefined : liveEnd / MiB,
      liveHeapGrowthAfterWarmMiB:
        liveWarm === undefined || liveEnd === undefined ? undefined : (liveEnd - liveWarm) / MiB,
      liveHeapBytesPerRequestAfterWarm: slope(
        liveHeapSamples.map((sample) => ({ x: sample.requests, y: sample.liveBytes })),
      ),
    };
  } finally {
    watch.close();
    client.close();
  }
}
