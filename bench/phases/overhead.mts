// 1. Proxy overhead: GET /api/todos through an app process against the same call straight to the
// sample API with the same user's valid access token, sequential, interleaved pair by pair so that
// drift (GC, the other core's load) falls on both sides alike.
import { HttpClient, type Answer } from '../http.mts';
import { getTodos, type SignedInUser } from '../load.mts';
import type { AppInstance } from '../stack.mts';
import { summarize, type Summary } from '../stats.mts';

export interface OverheadResult {
  readonly samples: number;
  readonly warmup: number;
  readonly directMs: Summary;
  readonly proxiedMs: Summary;
  /** proxied − direct of each pair. */
  readonly overheadMs: Summary;
  /** Answers other than 200 on either side (the samples are still timed). */
  readonly errors: number;
}

export async function measureOverhead(options: {
  app: AppInstance;
  user: SignedInUser;
  apiEndpoint: string;
  accessToken: string;
  samples: number;
  warmup: number;
  log: (message: string) => void;
}): Promise<OverheadResult> {
  // One connection each way, kept alive: a browser's steady state against the app, and the app's
  // own keep-alive connection to the API.
  const client = new HttpClient({ maxSockets: 1 });
  const direct = (): Promise<Answer> =>
    client.request(options.apiEndpoint, {
      headers: { authorization: `Bearer ${options.accessToken}`, accept: 'application/json' },
    });
  const proxied = (): Promise<Answer> => getTodos(client, options.app, options.user);
  const time = async (send: () => Promise<Answer>) => {
    const started = performance.now();
    const answer = await send();
    return { ms: performance.now() - started, ok: answer.status === 200 };
  };

  const directMs: number[] = [];
  const proxiedMs: number[] = [];
  const overheadMs: number[] = [];
  let errors = 0;
  try {
    for (let index = 0; index < options.warmup + options.samples; index += 1) {
      let d;
      let p;
      if (index % 2 === 0) {
        d = await time(direct);
        p = await time(proxied);
      } else {
        p = await time(proxied);
        d = await time(direct);
      }
      if (index < options.warmup) continue;
      if (!d.ok || !p.ok) errors += 1;
      directMs.push(d.ms);
      proxiedMs.push(p.ms);
      overheadMs.push(p.ms - d.ms);
      const done = index - options.warmup + 1;
      if (done % 500 === 0) options.log(`overhead: ${done}/${options.samples} pairs`);
    }
  } finally {
    client.close();
  }
  return {
    samples: options.samples,
    warmup: options.warmup,
    directMs: summarize(directMs),
    proxiedMs: summarize(proxiedMs),
    overheadMs: summarize(overheadMs),
    errors,
  };
}
