// `npm run dev` as a user meets it: both sample APIs answer through the app, each with a token of
// its own audience; a restart keeps users signed in with their to-dos and notes, --fresh starts
// clean, and a signal to any process of the stack stops all of it and frees every port.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { DEV_IDENTITIES } from '../../dev/dev-settings.mts';
import {
  allPorts,
  freeDevStackPorts,
  processTree,
  shareTestCa,
  startDevStack,
  waitUntilAllGone,
  type RunningDevStack,
} from '../support/dev-stack-process.ts';
import { testStack } from '../support/stack.ts';
import { UserAgent } from '../support/user-agent.ts';

const stateDirs: string[] = [];
const running: RunningDevStack[] = [];

function newStateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dev-stack-test-'));
  stateDirs.push(dir);
  shareTestCa(dir, testStack().emulator.caCertPath);
  return dir;
}

async function start(
  stateDir: string,
  ports: Awaited<ReturnType<typeof freeDevStackPorts>>,
  args: string[] = [],
) {
  const stack = await startDevStack(stateDir, ports, args);
  running.push(stack);
  return stack;
}

/** Stops the stack the way a user does (SIGINT to npm) and checks that it is all gone. */
async function stop(stack: RunningDevStack): Promise<void> {
  const pids = processTree(stack.npm.pid ?? 0).map((info) => info.pid);
  stack.npm.kill('SIGINT');
  await stack.exited;
  expect(await waitUntilAllGone(pids, allPorts(stack.ports))).toEqual({ pids: [], ports: [] });
}

afterEach(() => {
  // A failed test may leave a stack: stop the processes it started, by their pids.
  for (const stack of running.splice(0)) {
    for (const { pid } of processTree(stack.npm.pid ?? 0).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const dir of stateDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Signs alice in through the app and the emulator (consent is tenant-wide: writes need no more). */
async function signIn(agent: UserAgent, appOrigin: string): Promise<void> {
  const query = new URLSearchParams({ returnTo: '/', loginHint: 'alice@contoso.example' });
  const { location } = await agent.navigate(
    `${appOrigin}/auth/signin?${query}`,
    (target) =>
      target.startsWith(`${appOrigin}/`) && !new URL(target).pathname.startsWith('/auth/'),
  );
  expect(location).toBe(`${appOrigin}/`);
}

async function todos(agent: UserAgent, appOrigin: string): Promise<{ description: string }[]> {
  const response = await agent.fetch(`${appOrigin}/api/todos`, { headers: { 'X-CSRF': '1' } });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as { description: string }[];
}

async function notes(agent: UserAgent, appOrigin: string): Promise<{ text: string }[]> {
  const response = await agent.fetch(`${appOrigin}/api/notes/notes`, {
    headers: { 'X-CSRF': '1' },
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as { text: string }[];
}

/** The `aud` of every bearer token a sample API received, from its own request log. */
async function audiencesSeen(apiPort: number): Promise<string[]> {
  const response = await fetch(`http://127.0.0.1:${apiPort}/_api/requests`);
  expect(response.status).toBe(200);
  const requests = (await response.json()) as { headers: Record<string, string | undefined> }[];
  return requests.map((request) => {
    const token = (request.headers.authorization ?? '').replace(/^Bearer /, '');
    return String(decodeJwt(token).aud);
  });
}

describe('npm run dev serves both sample APIs through the app', () => {
  it('prints both APIs, says so in /auth/me, and each API gets tokens for its own audience only', async () => {
    const ports = await freeDevStackPorts();
    const stack = await start(newStateDir(), ports);
    const { appOrigin } = stack;
    expect(stack.output()).toContain(
      `ToDoList API      http://127.0.0.1:${ports.api}/api/todolist`,
    );
    expect(stack.output()).toContain(`Notes API         http://127.0.0.1:${ports.notesApi}/v1`);
    const agent = new UserAgent();
    await signIn(agent, appOrigin);
    const me = await agent.fetch(`${appOrigin}/auth/me`);
    expect(((await me.json()) as { apis: string[] }).apis).toEqual(['todos', 'notes']);

    const note = await agent.fetch(`${appOrigin}/api/notes/notes`, {
      method: 'POST',
      headers: { 'X-CSRF': '1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ text: 'a note through the app' }),
    });
    expect(note.status, await note.clone().text()).toBe(201);
    // The API's Location comes back rewritten under the app's /api/notes.
    expect(note.headers.get('location')).toMatch(/^\/api\/notes\/notes\/[0-9a-f-]+$/);
    expect((await notes(agent, appOrigin)).map((item) => item.text)).toEqual([
      'a note through the app',
    ]);
    expect(await todos(agent, appOrigin)).toEqual([]);

    const notesAudiences = await audiencesSeen(ports.notesApi);
    const todoAudiences = await audiencesSeen(ports.api);
    expect(notesAudiences.length).toBe(2);
    expect(new Set(notesAudiences)).toEqual(new Set([DEV_IDENTITIES.notesApiClientId]));
    expect(todoAudiences.length).toBe(1);
    expect(new Set(todoAudiences)).toEqual(new Set([DEV_IDENTITIES.apiClientId]));
    await stop(stack);
  }, 120_000);
});

describe('npm run dev names a port that is taken, and the option to change it', () => {
  it('the notes API port', async () => {
    const ports = await freeDevStackPorts();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(ports.notesApi, '127.0.0.1', resolve));
    try {
      await expect(start(newStateDir(), ports)).rejects.toThrow(
        `port ${ports.notesApi} (for the sample notes API (--notes-api-port)) already in use`,
      );
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  }, 60_000);
});

describe('npm run dev keeps its state in the state folder', () => {
  it('keeps the browser signed in (app, emulator), the to-dos and the notes across a restart; --fresh forgets them', async () => {
    const stateDir = newStateDir();
    const ports = await freeDevStackPorts();
    const agent = new UserAgent();

    let stack = await start(stateDir, ports);
    const { appOrigin } = stack;
    // Only URLs that work are printed: the app's on localhost (its cookies' host), never on the
    // address it listens on, and the banner's admin link answers.
    expect(stack.output()).not.toContain(`127.0.0.1:${ports.app}`);
    expect(stack.output()).toContain(`${appOrigin}/auth/signin`);
    const adminLink = `https://127.0.0.1:${ports.emulator}/_emulator/`;
    expect(stack.output()).toContain(adminLink);
    expect((await fetch(adminLink)).status).toBe(200);
    await signIn(agent, appOrigin);
    const added = await agent.fetch(`${appOrigin}/api/todos`, {
      method: 'POST',
      headers: { 'X-CSRF': '1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ description: 'kept across a restart' }),
    });
    expect(added.status).toBe(201);
    expect((await todos(agent, appOrigin)).length).toBe(1);
    const note = await agent.fetch(`${appOrigin}/api/notes/notes`, {
      method: 'POST',
      headers: { 'X-CSRF': '1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ text: 'a note kept across a restart' }),
    });
    expect(note.status).toBe(201);
    await stop(stack);

    stack = await start(stateDir, ports);
    // The app's session (Azurite on disk), its cached access token (whose signature the API
    // checks against the emulator's kept signing key) and the API's items all survived.
    const me = await agent.fetch(`${appOrigin}/auth/me`);
    expect(me.status).toBe(200);
    expect(((await me.json()) as { username: string }).username).toBe('alice@contoso.example');
    expect((await todos(agent, appOrigin)).map((item) => item.description)).toEqual([
      'kept across a restart',
    ]);
    expect((await notes(agent, appOrigin)).map((item) => item.text)).toEqual([
      'a note kept across a restart',
    ]);
    // The emulator's own session (its store and cookie keys) survived too: signing in again
    // goes straight back to the app, without its sign-in page.
    const again = await agent.navigate(
      `${appOrigin}/auth/signin?returnTo=/`,
      (target) =>
        target.startsWith(`${appOrigin}/`) && !new URL(target).pathname.startsWith('/auth/'),
    );
    expect(again.location, `sign-in stopped at ${again.response.status}`).toBe(`${appOrigin}/`);
    await stop(stack);

    stack = await start(stateDir, ports, ['--fresh']);
    expect(stack.output()).toMatch(
      /--fresh: deleted azurite\/, entra-emulator\/, todolist-api\/, notes-api\//,
    );
    expect((await agent.fetch(`${appOrigin}/auth/me`)).status).toBe(401);
    const fresh = await agent.navigate(`${appOrigin}/auth/signin?returnTo=/`);
    // No emulator session any more: its sign-in page asks who is signing in.
    expect(fresh.response.status).toBe(200);
    expect(new URL(fresh.response.url).origin).not.toBe(appOrigin);
    await fresh.response.body?.cancel();
    await signIn(agent, appOrigin);
    expect(await todos(agent, appOrigin)).toEqual([]);
    expect(await notes(agent, appOrigin)).toEqual([]);
    await stop(stack);
  }, 180_000);
});

// A process manager or an IDE signals the pid it started (npm); a user may signal any other one.
const cases: { signal: NodeJS.Signals; target: 'npm' | 'dev-stack' | 'azurite' | 'app' }[] = [
  { signal: 'SIGINT', target: 'npm' },
  { signal: 'SIGTERM', target: 'npm' },
  { signal: 'SIGHUP', target: 'npm' },
  { signal: 'SIGTERM', target: 'dev-stack' },
  { signal: 'SIGHUP', target: 'dev-stack' },
  { signal: 'SIGINT', target: 'azurite' },
  { signal: 'SIGHUP', target: 'app' },
];

describe('a signal to any process of npm run dev stops every process and frees every port', () => {
  it.each(cases)(
    '$signal to $target',
    async ({ signal, target }) => {
      const stack = await start(newStateDir(), await freeDevStackPorts());
      const tree = processTree(stack.npm.pid ?? 0);
      const find = (pattern: RegExp) => {
        const found = tree.find((info) => pattern.test(info.command));
        expect(found, `no ${target} process in ${JSON.stringify(tree)}`).toBeDefined();
        return found?.pid ?? 0;
      };
      const pid = {
        npm: () => stack.npm.pid ?? 0,
        'dev-stack': () => find(/dev\/dev-stack\.mts/),
        azurite: () => find(/azurite\/dist\/src\/azurite\.js/),
        app: () => find(/dev\/local-host\/cli\.mts|\bfunc\b/),
      }[target]();
      // npm, the dev-stack node process, Azurite and the app: nothing in between (no shell).
      expect(tree.length).toBe(4);

      process.kill(pid, signal);

      const left = await waitUntilAllGone(
        tree.map((info) => info.pid),
        allPorts(stack.ports),
      );
      expect(left, stack.output()).toEqual({ pids: [], ports: [] });
    },
    90_000,
  );
});
