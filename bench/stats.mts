// Percentiles and summaries of latency samples.

/** The q-quantile (0..1) of already sorted values, nearest-rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export interface Summary {
  readonly count: number;
  readonly median: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    count: sorted.length,
    median: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : total / sorted.length,
  };
}

export function median(values: readonly number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** Rounds for the report: 3 significant decimals below 10, fewer above. */
export function round(value: number, decimals = 3): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((sum, p) => sum + p.x, 0) / n;
  const my = points.reduce((sum, p) => sum + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/**
 * Milliseconds for a fixed piece of CPU work (JSON and hashing, as a request does), best of three:
 * the same machine in the same state gives the same figure, so a run whose figure is much higher
 * ran on a slower or busier machine (a hypervisor's neighbours do not show in /proc).
 */
export async function cpuIndexMs(): Promise<number> {
  const { createHash } = await import('node:crypto');
  const document = JSON.stringify(
    Array.from({ length: 200 }, (_, index) => ({ index, name: `item ${index}`, tags: ['a', 'b'] })),
  );
  let best = Infinity;
  for (let round = 0; round < 3; round += 1) {
    const started = performance.now();
    for (let index = 0; index < 2000; index += 1) {
      const parsed = JSON.parse(document) as unknown[];
      createHash('sha256').update(JSON.stringify(parsed)).digest();
    }
    best = Math.min(best, performance.now() - started);
  }
  return best;
}
