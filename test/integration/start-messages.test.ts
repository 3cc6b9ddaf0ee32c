// The first commands a newcomer runs fail with a message that says what to do, before anything else.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { SETTING_NAMES } from '../../src/lib/config.ts';
import { testStack } from '../support/stack.ts';

const root = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** This environment without any of the app's settings, as on a fresh machine. */
function environmentWithoutSettings(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of SETTING_NAMES) delete env[name];
  return env;
}

it('npm run start:local without local.settings.json says to copy the sample (or npm run dev) before the missing settings', () => {
  // A checkout of the built app without local.settings.json.
  const appRoot = mkdtempSync(path.join(tmpdir(), 'no-settings-'));
  dirs.push(appRoot);
  copyFileSync(path.join(root, 'package.json'), path.join(appRoot, 'package.json'));
  copyFileSync(path.join(root, 'host.json'), path.join(appRoot, 'host.json'));
  symlinkSync(path.join(root, 'dist'), path.join(appRoot, 'dist'));

  const run = spawnSync(process.execPath, [path.join(root, 'dev/local-host/cli.mts')], {
    cwd: appRoot,
    env: { ...environmentWithoutSettings(), PORT: '0' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(run.status).toBe(1);
  const hint = run.stderr.indexOf('there is no local.settings.json');
  const missing = run.stderr.indexOf('CLIENT_ID is missing');
  expect(hint, run.stderr).toBeGreaterThanOrEqual(0);
  expect(run.stderr).toMatch(/Copy local\.settings\.sample\.json to local\.settings\.json/);
  expect(run.stderr).toMatch(/npm run dev/);
  expect(missing, run.stderr).toBeGreaterThan(hint);
});

it('npm start without Core Tools says it is not installed and to use npm run start:local, before building', () => {
  const scripts = (
    JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts;
  // The check runs first, so a missing func stops npm start before the build.
  expect(scripts.prestart).toMatch(/^node scripts\/require-core-tools\.mts && npm run build$/);

  // A PATH with only the project's Node on it: no func.
  const run = spawnSync(process.execPath, [path.join(root, 'scripts/require-core-tools.mts')], {
    cwd: root,
    env: { ...process.env, PATH: path.dirname(process.execPath) },
    encoding: 'utf8',
  });
  expect(run.status).toBe(1);
  expect(run.stderr).toMatch(/Core Tools \(the `func` command\) is not installed/);
  expect(run.stderr).toMatch(/downloads the\s+Core Tools binary/);
  expect(run.stderr).toMatch(/npm run start:local serves the same HTTP functions/);
});

it('a sign-in started at 127.0.0.1 when REDIRECT_URI says localhost is stopped with a page naming the host to use', async () => {
  const { appOrigin } = testStack();
  const port = new URL(appOrigin).port;
  const wrong = await fetch(`http://127.0.0.1:${port}/auth/signin?returnTo=/after`, {
    redirect: 'manual',
  });
  expect(wrong.status).toBe(400);
  // No sign-in cookie: it would be kept for 127.0.0.1 and never come back to localhost.
  expect(wrong.headers.getSetCookie()).toEqual([]);
  const page = await wrong.text();
  expect(page).toContain(`Sign in at ${appOrigin}`);
  expect(page).toContain(`href="${appOrigin}/auth/signin?returnTo=%2Fafter"`);
  expect(page).toContain(`<a href="${appOrigin}/">Back to the to-do list</a>`);

  const right = await fetch(`${appOrigin}/auth/signin?returnTo=/after`, { redirect: 'manual' });
  expect(right.status).toBe(302);
});
