import { setTimeout as delay } from 'node:timers/promises';
import type { RawAnswer } from '../../security/support/http.ts';

/** One request of the background traffic, with when it started and ended (performance.now()). */
export interface Sample {
  readonly kind: string;
  readonly app: number;
  readonly started: number;
  readonly ended: number;
  /** 0 when no answer came (connection refused or reset). */
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly contentType: string | undefined;
  readonly text: string;
  readonly error: string | undefined;
}

export type Shot = () => { kind: string; app: number; send: () => Promise<RawAnswer> };

/**
 * Background traffic: `workers` loops, each sending the next request of `next()` and pausing
 * `pauseMs` between requests, until stopped or `maxRequests` have been sent. Bounded in count,
 * so a test can never flood the machine.
 */
export class Traffic {
  readonly samples: Sample[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private sent = 0;
  private readonly next: Shot;
  private readonly options: { workers: number; pauseMs: number; maxRequests: number };

  constructor(next: Shot, options: { workers: number; pauseMs: number; maxRequests: number }) {
    this.next = next;
    this.options = options;
  }

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.options.workers }, () => this.loop());
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(): Promise<void> {
    while (this.running && this.sent < this.options.maxRequests) {
      this.sent += 1;
      const { kind, app, send } = this.next();
      const started = performance.now();
      try {
        const answer = await send();
        this.samples.push({
          kind,
          app,
          started,
          ended: performance.now(),
          status: answer.status,
          retryAfter: answer.headers['retry-after'],
          contentType: answer.headers['content-type'],
          text: answer.text.slice(0, 300),
          error: undefined,
        });
      } catch (error) {
        this.samples.push({
          kind,
          app,
          started,
          ended: performance.now(),
          status: 0,
          retryAfter: undefined,
          contentType: undefined,
          text: '',
          error: (error as Error).message,
        });
      }
      await delay(this.options.pauseMs);
    }
  }

  /** Samples that started at or after `since` (performance.now()). */
  after(since: number): Sample[] {
    return this.samples.filter((sample) => sample.started >= since);
  }
}

/**
 * Polls `check` every `intervalMs` until it returns true; fails after `deadlineMs`. A poll, not a
 * sleep: it returns as soon as the condition holds.
 */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  { deadlineMs = 30_000, intervalMs = 10 } = {},
): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > deadlineMs) {
      throw new Error(`${what}: not within ${deadlineMs} ms`);
    }
    await delay(intervalMs);
  }
}

/** Counts of each status, e.g. `{ 200: 41, 503: 12 }`. */
export function statusCounts(samples: readonly Sample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const sample of samples) {
    const key = sample.status === 0 ? `no answer (${sample.error})` : String(sample.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
