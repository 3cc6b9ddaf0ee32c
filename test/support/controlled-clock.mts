// Loaded into an app process with `NODE_OPTIONS=--import <this file>` by tests that must move the
// app's clock: `Date.now()` (the clock SessionStore and the L1 read) runs ahead of the real one by
// an offset that grows by TEST_CLOCK_STEP_MS at every SIGUSR2, and each step is acknowledged with
// a `test-clock: +<offset> ms` line on stdout, so a test waits for the step to have happened instead
// of sleeping. Never part of the app: only test processes load it.
const step = Number(process.env.TEST_CLOCK_STEP_MS);
if (!Number.isSafeInteger(step) || step <= 0) {
  throw new Error('TEST_CLOCK_STEP_MS must be a positive whole number of milliseconds');
}
const realNow = Date.now.bind(Date);
let offset = 0;
Date.now = () => realNow() + offset;
process.on('SIGUSR2', () => {
  offset += step;
  process.stdout.write(`test-clock: +${offset} ms\n`);
});
