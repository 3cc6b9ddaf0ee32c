import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../security/support/http.ts';
import {
  Cluster,
  crashLines,
  expectProcessAlive,
  privateUsers,
  SESSION_COOKIE,
  type Caller,
} from './support/cluster.ts';
import { report } from './support/report.ts';
import { statusCounts, Traffic, until } from './support/traffic.ts';

// Table Storage stopped under traffic, with three app processes sharing one Azurite (on disk, as
// Azure Storage keeps its data through an outage): every request that needs the store gets a 503
// with Retry-After, nothing crashes, and once Azurite is back on its port service resumes within a
// second, with no restart and nobody signed out.

const users = privateUsers('outage', ['ann', 'bo', 'cal', 'dot']);
const APPS = 3;
let cluster: Cluster;
let callers: Caller[];

beforeAll(async () => {
  cluster = await Cluster.start({ users, apps: APPS, storage: { kind: 'own', persistent: true } });
  callers = [];
  for (const user of users) callers.push(await cluster.signIn(user));
});

afterAll(async () => {
  await cluster?.stop();
});

/** Requests that need the token store, in turn: the API (session and tokens), /auth/me, /health. */
function shots() {
  let turn = 0;
  return () => {
    turn += 1;
    const caller = callers[turn % callers.length] as Caller;
    const app = Math.floor(turn / 3) % APPS;
    const kind = ['api', 'me', 'health'][turn % 3] as string;
    const origin = cluster.apps[app]?.origin ?? '';
    const cookie = `${SESSION_COOKIE}=${caller.cookieValue}`;
    return {
      kind,
      app,
      send: () =>
        kind === 'api'
          ? caller.call('GET', '/api/todos', { app })
          : rawRequest(origin, {
              path: kind === 'me' ? '/auth/me' : '/health',
              headers: { cookie },
            }),
    };
  };
}

describe('Azurite stopped under traffic', () => {
  it('answers 503 with Retry-After, stays up, and resumes within a second of Azurite returning', async () => {
    for (const caller of callers) {
      for (let app = 0; app < APPS; app += 1) {
        expect((await caller.call('GET', '/api/todos', { app })).status).toBe(200);
      }
    }
    const traffic = new Traffic(shots(), { workers: 6, pauseMs: 15, maxRequests: 6000 });
    traffic.start();
    try {
      await until(
        'steady traffic',
        () => traffic.samples.filter((s) => s.status === 200).length >= 30,
      );

      await cluster.untilPersisted(users);
      const stoppedAt = performance.now();
      const port = await cluster.stopAzurite();
      // Every app process answers the outage, for every kind of request.
      await until(
        'a 503 from every app process for every kind of request',
        () =>
          [0, 1, 2].every((app) =>
            ['api', 'me', 'health'].every((kind) =>
              traffic
                .after(stoppedAt)
                .some((s) => s.app === app && s.kind === kind && s.status === 503),
            ),
          ),
        { deadlineMs: 20_000 },
      );

      await cluster.startAzurite(port);
      const upAt = performance.now();
      // A poll per app process: a request every 10 ms until the first 200 of a proxied call.
      const resumed = await Promise.all(
        [0, 1, 2].map(async (app) => {
          const caller = callers[app % callers.length] as Caller;
          let firstOk: { started: number; ended: number } | undefined;
          let last = '';
          await until(
            `app process ${app} serving again`,
            async () => {
              const started = performance.now();
              const answer = await caller.call('GET', '/api/todos', { app });
              if (answer.status === 200) firstOk = { started, ended: performance.now() };
              last = `${answer.status} ${answer.text}`;
              return answer.status === 200;
            },
            { deadlineMs: 15_000, intervalMs: 10 },
          ).catch((error: unknown) => {
            throw new Error(`${(error as Error).message}; last answer: ${last}`);
          });
          return {
            app,
            startedMs: (firstOk?.started ?? 0) - upAt,
            answeredMs: (firstOk?.ended ?? 0) - upAt,
          };
        }),
      );
      await until('background traffic served again', () =>
        traffic.after(upAt).some((s) => s.status === 200),
      );
      await traffic.stop();

      const during = traffic.samples.filter((s) => s.started >= stoppedAt && s.ended <= upAt);
      report('Azurite stopped under traffic', {
        appProcesses: APPS,
        requests: traffic.samples.length,
        statuses: statusCounts(traffic.samples),
        duringOutage: statusCounts(during),
        slowestAnswerDuringOutageMs: Math.round(
          Math.max(...during.map((s) => s.ended - s.started)),
        ),
        resumeAfterAzuriteListens: resumed.map(({ app, startedMs, answeredMs }) => ({
          app,
          firstOkSentAtMs: Math.round(startedMs),
          firstOkAnsweredAtMs: Math.round(answeredMs),
        })),
      });

      // Only 200 (before, after, or served as the outage began) and 503: no 500, no dropped connection.
      for (const sample of traffic.samples) {
        expect(
          [200, 503],
          `${sample.kind} on app ${sample.app}: ${sample.error ?? sample.text}`,
        ).toContain(sample.status);
        if (sample.status === 503) {
          expect(Number(sample.retryAfter)).toBeGreaterThan(0);
          expect(sample.contentType).toBe('application/problem+json');
          expect(sample.text).not.toMatch(/AccountKey|devstoreaccount1|\bat .*\.js:\d+/);
        }
      }
      expect(during.filter((s) => s.status === 503).length).toBeGreaterThan(0);
      // Service resumes within a second of Azurite listening again: the first proxied call that
      // succeeds on each process was answered less than 1 s after (measured on the poll above).
      for (const { app, answeredMs } of resumed) {
        expect(answeredMs, `app process ${app}`).toBeLessThan(1000);
      }
    } finally {
      await traffic.stop();
    }

    // Nobody was signed out, no process restarted or crashed.
    for (const caller of callers) {
      for (let app = 0; app < APPS; app += 1) {
        expect((await caller.call('GET', '/api/todos', { app })).status).toBe(200);
      }
    }
    for (const app of cluster.apps) await expectProcessAlive(app);
    expect(crashLines(cluster.output())).toEqual([]);
  });
});
