import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestUser } from '../../dev/entra-emulator/emulator.mts';
import type { RawAnswer } from '../security/support/http.ts';
import {
  Cluster,
  crashLines,
  expectProcessAlive,
  privateUsers,
  type Caller,
} from './support/cluster.ts';
import { report } from './support/report.ts';

// The ToDoList API down, slow, failing or throttling, under concurrent calls to two app processes
// with a short TODOLIST_TIMEOUT_MS: 502 when it cannot be reached, 504 at the deadline (never
// later), its own errors relayed as problem details with their status (and Retry-After for 429
// and 503), and the processes serve on.

const TIMEOUT_MS = 1000;
const CONCURRENT = 12;
const [jo, kit] = privateUsers('apifaults', ['jo', 'kit']) as [TestUser, TestUser];
let cluster: Cluster;
let callers: Caller[];

beforeAll(async () => {
  cluster = await Cluster.start({
    users: [jo, kit],
    apps: 2,
    appEnv: { TODOLIST_TIMEOUT_MS: String(TIMEOUT_MS) },
  });
  callers = [await cluster.signIn(jo), await cluster.signIn(kit)];
});

afterAll(async () => {
  await cluster?.stop();
});

beforeEach(() => {
  cluster.api.clearFaults();
});

/** CONCURRENT calls at once, spread over users, methods and app processes. */
async function burst(): Promise<{ answer: RawAnswer; method: string; elapsedMs: number }[]> {
  return Promise.all(
    Array.from({ length: CONCURRENT }, async (_, index) => {
      const caller = callers[index % callers.length] as Caller;
      const method = index % 3 === 0 ? 'POST' : 'GET';
      const started = performance.now();
      const answer = await caller.call(method, '/api/todos', {
        app: index % 2,
        ...(method === 'POST' ? { body: { description: `burst ${index}` } } : {}),
      });
      return { answer, method, elapsedMs: performance.now() - started };
    }),
  );
}

function expectProblem(answer: RawAnswer, status: number): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers['content-type']).toBe('application/problem+json');
  expect(answer.json).toMatchObject({ type: 'about:blank', status });
  expect(answer.text).not.toMatch(/\bat .*\.js:\d+|ECONN|eyJ|Bearer/);
}

describe('the ToDoList API failing under concurrent calls', () => {
  it('not listening: 502 for every call, at once; back to 200 when it listens again', async () => {
    await cluster.api.close();
    let results;
    try {
      results = await burst();
    } finally {
      await cluster.restartApi();
    }
    for (const { answer, elapsedMs } of results) {
      expectProblem(answer, 502);
      expect(elapsedMs).toBeLessThan(TIMEOUT_MS);
    }
    for (const { answer } of await burst()) expect([200, 201]).toContain(answer.status);
    report('API not listening', {
      calls: CONCURRENT,
      slowestMs: Math.round(Math.max(...results.map((r) => r.elapsedMs))),
    });
  });

  it('dropping connections: 502', async () => {
    cluster.api.setFault({ mode: 'down' });
    for (const { answer } of await burst()) expectProblem(answer, 502);
  });

  it('slower than TODOLIST_TIMEOUT_MS: 504 at the deadline for every call, none much later', async () => {
    cluster.api.setFault({ mode: 'slow', delayMs: TIMEOUT_MS * 4 });
    const results = await burst();
    for (const { answer, elapsedMs } of results) {
      expectProblem(answer, 504);
      expect(elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      // The deadline holds under load: well before the API would have answered.
      expect(elapsedMs).toBeLessThan(TIMEOUT_MS * 3);
    }
    report('API slow', {
      timeoutMs: TIMEOUT_MS,
      calls: CONCURRENT,
      fastestMs: Math.round(Math.min(...results.map((r) => r.elapsedMs))),
      slowestMs: Math.round(Math.max(...results.map((r) => r.elapsedMs))),
    });
  });

  it.each([500, 502, 503, 504, 400, 404, 409])(
    'its %i: relayed with that status as problem details',
    async (status) => {
      cluster.api.setFault({ mode: 'status', status, retryAfter: 7 });
      for (const { answer } of await burst()) {
        expectProblem(answer, status);
        expect(answer.headers['retry-after']).toBe(status === 503 ? '7' : undefined);
      }
    },
  );

  it.each([
    ['seconds', 30],
    ['an HTTP date', 'Wed, 21 Oct 2037 07:28:00 GMT'],
  ])('its 429 with Retry-After in %s: relayed with the Retry-After', async (_case, retryAfter) => {
    cluster.api.setFault({ mode: 'status', status: 429, retryAfter });
    for (const { answer } of await burst()) {
      expectProblem(answer, 429);
      expect(answer.headers['retry-after']).toBe(String(retryAfter));
    }
  });

  it('afterwards every process serves normally and nothing crashed', async () => {
    for (const { answer } of await burst()) expect([200, 201]).toContain(answer.status);
    for (const app of cluster.apps) await expectProcessAlive(app);
    expect(crashLines(cluster.output())).toEqual([]);
  });
});
