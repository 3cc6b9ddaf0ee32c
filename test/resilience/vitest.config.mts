import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// `npm run test:resilience`: fault injection with the real parts (several app processes, Azurite
// stopped and restarted, processes killed mid-write). Slower than `npm test`, so kept apart; the
// files run one at a time, so that no scenario's timing is another's load.
export default defineConfig({
  root: resolve(import.meta.dirname, '../..'),
  test: {
    include: ['test/resilience/**/*.resilience.ts'],
    globalSetup: ['test/setup/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/resilience.json' },
  },
});
