// Bounded load: a fixed number of workers, each sending one request at a time, until a count or
// a deadline is reached. Every request goes to a loopback address; nothing runs after it returns.
import type { TestUser } from '../dev/entra-emulator/emulator.mts';
import type { Answer, HttpClient } from './http.mts';
import { SESSION_COOKIE, type AppInstance } from './stack.mts';

export interface SignedInUser {
  readonly user: TestUser;
  /** The session cookie's value. */
  readonly session: string;
}

/** The headers of the app's page's GET /api/todos to `app`, with the user's session cookie. */
export function pageHeaders(
  app: Pick<AppInstance, 'port' | 'origin'>,
  user: SignedInUser,
): Record<string, string> {
  return {
    host: `localhost:${app.port}`,
    cookie: `${SESSION_COOKIE}=${user.session}`,
    'x-csrf': '1',
    'sec-fetch-site': 'same-origin',
    origin: app.origin,
    accept: 'application/json',
  };
}

/** GET /api/todos through an app process, as the app's page sends it. */
export function getTodos(
  client: HttpClient,
  app: AppInstance,
  user: SignedInUser,
): Promise<Answer> {
  return client.request(`http://127.0.0.1:${app.port}/api/todos`, {
    headers: pageHeaders(app, user),
  });
}

export interface LoadResult {
  readonly requests: number;
  readonly elapsedMs: number;
  /** Latency of every request, in send order per worker, ms. */
  readonly latencies: number[];
  readonly byStatus: Record<string, number>;
  /** Requests that got no answer (connection refused, reset, timeout). */
  readonly failures: number;
  readonly firstFailure: string | undefined;
}

export async function runLoad(options: {
  concurrency: number;
  /** Stop after this many requests... */
  total?: number;
  /** ...or after this long, whichever comes first. */
  durationMs?: number;
  send: (index: number) => Promise<Answer>;
  /** Called every `progressEvery` requests with the number done. */
  onProgress?: (done: number) => void;
  progressEvery?: number;
}): Promise<LoadResult> {
  const total = options.total ?? Number.MAX_SAFE_INTEGER;
  const deadline = performance.now() + (options.durationMs ?? 24 * 3_600_000);
  if (options.total === undefined && options.durationMs === undefined) {
    throw new Error('a load needs a count or a duration');
  }
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  let failures = 0;
  let firstFailure: string | undefined;
  let next = 0;
  let done = 0;
  const started = performance.now();
  const worker = async () => {
    for (;;) {
      if (next >= total || performance.now() >= deadline) return;
      const index = next;
      next += 1;
      const sent = performance.now();
      try {
        const answer = await options.send(index);
        latencies.push(performance.now() - sent);
        byStatus[answer.status] = (byStatus[answer.status] ?? 0) + 1;
      } catch (error) {
        failures += 1;
        firstFailure ??= (error as Error).message;
      }
      done += 1;
      if (options.onProgress && done % (options.progressEvery ?? 1000) === 0) {
        options.onProgress(done);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return {
    requests: done,
    elapsedMs: performance.now() - started,
    latencies,
    byStatus,
    failures,
    firstFailure,
  };
}

/** Runs `task` over `items` with at most `concurrency` at a time, in order of start. */
export async function forEachBounded<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
