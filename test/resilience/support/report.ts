import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Measured figures of the resilience run, for people: printed, and kept in one JSON file. */
const FIGURES = resolve(import.meta.dirname, '../../../test-results/resilience-figures.json');

export function report(scenario: string, figures: Record<string, unknown>): void {
  console.log(`[resilience] ${scenario}: ${JSON.stringify(figures)}`);
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(readFileSync(FIGURES, 'utf8')) as Record<string, unknown>;
  } catch {
    // First figures of the run.
  }
  all[scenario] = { ...figures, measuredAt: new Date().toISOString() };
  mkdirSync(dirname(FIGURES), { recursive: true });
  writeFileSync(FIGURES, `${JSON.stringify(all, null, 2)}\n`);
}
