import { afterAll } from 'vitest';

/**
 * Counts the statuses each property met and prints them after the file (`<label>, <property>:
 * 200×15 400×156 …`), so a run shows what it reached, not only that it passed.
 */
export function statusTally(label: string): (property: string, status: number) => void {
  const seen = new Map<string, Map<number, number>>();
  afterAll(() => {
    for (const [property, counts] of seen) {
      const line = [...counts].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`);
      console.log(`${label}, ${property}: ${line.join(' ')}`);
    }
  });
  return (property, status) => {
    const counts = seen.get(property) ?? new Map<number, number>();
    counts.set(status, (counts.get(status) ?? 0) + 1);
    seen.set(property, counts);
  };
}
