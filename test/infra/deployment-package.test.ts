import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startAppProcess, type AppProcess } from '../../dev/app-process.mts';
import { appSettings, DEV_IDENTITIES, webAppClient } from '../../dev/dev-settings.mts';
import { startEntraEmulator, type EntraEmulator } from '../../dev/entra-emulator/emulator.mts';
import { findFreePort } from '../../dev/ports.mts';
import { startTodoListApi, type TodoListApi } from '../../dev/todolist-api/todolist-api.mts';
import { readFuncignore } from '../../infra/hooks/funcignore.mjs';
import { signInThroughApp } from '../support/app-session.ts';
import { testStack } from '../support/stack.ts';
import { uniqueTableName } from '../support/table-storage.ts';
import { UserAgent } from '../support/user-agent.ts';

// What `azd package` / `azd up` does with this service, as Azure/azure-dev's source says:
// - cli/azd/pkg/project/service_manager.go, Package: restore first (framework Requirements:
//   RequireRestore), then the `prepackage` hooks, then the framework's Package, then the service
//   target's Package (the zip), then `postpackage`.
// - cli/azd/pkg/project/framework_service_node.go: Requirements has RequireBuild false, so no build
//   runs before `prepackage`; Restore runs `npm install` unless node_modules/.package-lock.json is
//   newer than package-lock.json (cli/azd/pkg/tools/node/detect.go); Package runs
//   `npm run build --if-present` and then takes the azure.yaml `dist` folder as the package, as is.
// - cli/azd/pkg/tools/bash/bash.go: an inline posix hook runs as a `#!/bin/sh` + `set -e` script in
//   the service's folder, with the machine's own `node` on the PATH.
// - cli/azd/pkg/project/project_utils.go, createDeployableZip: zips that folder with the
//   `.funcignore` found in it; without one, and with `remoteBuild: false`, node_modules is kept.
//   Symlinks are resolved (a dangling one fails the zip); `.azure`, `.funcignore` and
//   `local.settings.json` are left out.
// - cli/azd/pkg/project/service_target_functionapp.go, resolveFunctionAppRemoteBuild: on Flex
//   Consumption, `remoteBuild: false` is refused when the project's `.funcignore` ignores
//   node_modules.
// So the test clones the committed HEAD, installs, runs the hook as azure.yaml declares it, runs
// azd's build, and serves exactly the staged folder with the local host against a stack of its own.

const root = path.resolve(import.meta.dirname, '../..');
const stack = testStack();
const connectionString = inject('azuriteConnectionString');
const MINUTE = 60_000;

interface Ran {
  readonly code: number | null;
  readonly output: string;
  readonly ms: number;
}

/**
 * The environment azd gives a hook: this machine's, without what `npm test` added (npm's own
 * variables, and node_modules/.bin with the project's Node.js first on the PATH).
 */
function machineEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name) && name !== 'INIT_CWD') env[name] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(
      (entry) => !entry.split(path.sep).includes('node_modules') && !/node-gyp-bin/.test(entry),
    )
    .join(path.delimiter);
  return env;
}

/** Runs a command to its end or a time limit (then kills its whole process group). */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<Ran> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: machineEnvironment(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs / 1000} s]`;
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${command} could not be started in ${cwd}: ${error.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Math.round(performance.now() - started) });
    });
  });
}

/** Runs a step that must succeed, failing with its command and the end of its output. */
async function mustRun(
  step: string,
  command: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
): Promise<number> {
  const ran = await run(command, args, cwd, timeoutMs);
  if (ran.code !== 0) {
    throw new Error(
      `${step} (${[command, ...args].join(' ')} in ${cwd}) failed with ${ran.code}:\n` +
        ran.output.slice(-6000),
    );
  }
  return ran.ms;
}

/** Every path under `folder`, relative, posix, with what it is. */
function walk(folder: string, relative = ''): { path: string; kind: 'file' | 'dir' | 'link' }[] {
  return readdirSync(path.join(folder, relative), { withFileTypes: true }).flatMap((entry) => {
    const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isSymbolicLink()) return [{ path: child, kind: 'link' as const }];
    if (entry.isDirectory()) return [{ path: child, kind: 'dir' as const }, ...walk(folder, child)];
    return [{ path: child, kind: 'file' as const }];
  });
}

describe('the package azd deploys, built as azd builds it on a fresh clone (azure-dev service_manager.go Package, framework_service_node.go)', () => {
  let work: string;
  let clone: string;
  let staged: string;
  let emulator: EntraEmulator | undefined;
  let api: TodoListApi | undefined;
  let app: AppProcess | undefined;
  const clientSecret = randomBytes(24).toString('base64url');
  const user = {
    oid: '7e57e57e-0000-4000-8000-00000000d001',
    name: 'Dora Deploy',
    preferred_username: 'dora@contoso.example',
  };
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'azd-package-'));
    clone = path.join(work, 'clone');
    timings.clone = await mustRun(
      'git clone',
      'git',
      ['clone', '--quiet', '--no-hardlinks', root, clone],
      work,
      MINUTE,
    );
    const head = async (repo: string) =>
      (await run('git', ['-C', repo, 'rev-parse', 'HEAD'], work, MINUTE)).output.trim();
    expect(await head(clone), 'the clone is the committed HEAD').toBe(await head(root));
    // An earlier run's build left behind, as on a developer's machine: it must not be shipped.
    mkdirSync(path.join(clone, 'dist', 'bundle'), { recursive: true });
    writeFileSync(
      path.join(clone, 'dist', 'bundle', 'app.js'),
      "throw new Error('a stale build was shipped');\n",
    );
    writeFileSync(path.join(clone, 'dist', 'stale-build.txt'), 'from an earlier build\n');

    // azd's restore (npm install on a fresh clone); `npm ci` installs exactly the lockfile.
    timings.install = await mustRun(
      'npm ci',
      'npm',
      ['ci', '--no-audit', '--no-fund', '--prefer-offline'],
      clone,
      8 * MINUTE,
    );

    // The hook, as azure.yaml declares it and azd runs an inline posix hook (bash.go).
    const azureYaml = parseYaml(readFileSync(path.join(clone, 'azure.yaml'), 'utf8')) as {
      services: Record<
        string,
        { project: string; dist: string; hooks: { prepackage: { posix: { run: string } } } }
      >;
    };
    const service = Object.values(azureYaml.services)[0];
    if (service === undefined) throw new Error('azure.yaml declares no service');
    const servicePath = path.join(clone, service.project);
    const script = path.join(work, 'prepackage.sh');
    writeFileSync(
      script,
      `#!/bin/sh\nset -e\n\n# as azd writes an inline hook\n${service.hooks.prepackage.posix.run}\n`,
    );
    timings.hook = await mustRun('the prepackage hook', 'sh', [script], servicePath, 8 * MINUTE);

    // azd's own build, after the hook (framework_service_node.go, nodeProject.Package).
    timings.azdBuild = await mustRun(
      "azd's npm run build",
      'npm',
      ['run', 'build', '--if-present'],
      servicePath,
      3 * MINUTE,
    );
    staged = path.join(servicePath, service.dist);

    // The staged folder, served by the local host, with a stack of its own whose app it is.
    const stackStarted = performance.now();
    const port = await findFreePort();
    const origin = `http://localhost:${port}`;
    emulator = await startEntraEmulator({
      certDir: path.dirname(stack.emulator.caCertPath),
      tenantId: DEV_IDENTITIES.tenantId,
      clients: [webAppClient(origin, clientSecret)],
      api: { clientId: DEV_IDENTITIES.apiClientId },
      users: [user],
    });
    api = await startTodoListApi({
      issuer: emulator.issuer,
      jwksUri: emulator.jwksUri,
      audience: DEV_IDENTITIES.apiClientId,
      caCertPem: emulator.caCertPem,
    });
    timings.stack = Math.round(performance.now() - stackStarted);
    const serveStarted = performance.now();
    app = await startAppProcess({
      port,
      cwd: staged,
      env: {
        ...appSettings({
          appOrigin: origin,
          authority: emulator.authority,
          clientSecret,
          todoListEndpoint: api.endpoint,
          tokenCacheStorage: connectionString,
          sessionKeys: randomBytes(32).toString('base64'),
          tokenCacheKeys: randomBytes(32).toString('base64'),
          tokenCacheTable: uniqueTableName('deploy'),
        }),
        NODE_EXTRA_CA_CERTS: emulator.caCertPath,
      },
    });
    timings.serve = Math.round(performance.now() - serveStarted);
    console.info(
      `fresh-clone package (ms): ${Object.entries(timings)
        .map(([phase, ms]) => `${phase} ${ms}`)
        .join(', ')}`,
    );
  }, 20 * MINUTE);

  afterAll(async () => {
    const started = performance.now();
    await app?.stop();
    await api?.close();
    await emulator?.close();
    // The clone's node_modules: hundreds of packages, slow to delete on a busy machine.
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    console.info(
      `fresh-clone package: cleaned up in ${Math.round(performance.now() - started)} ms`,
    );
  }, 10 * MINUTE);

  it('holds package.json `main` and the production dependencies, and no dev dependency', () => {
    const packageJson = JSON.parse(readFileSync(path.join(staged, 'package.json'), 'utf8')) as {
      main: string;
      dependencies: Record<string, string>;
    };
    expect(existsSync(path.join(staged, packageJson.main)), packageJson.main).toBe(true);
    for (const name of Object.keys(packageJson.dependencies)) {
      expect(existsSync(path.join(staged, 'node_modules', name, 'package.json')), name).toBe(true);
    }
    for (const name of [
      'azurite',
      'vitest',
      'typescript',
      'esbuild',
      'eslint',
      'node',
      'oidc-provider',
      'playwright-core',
      'azure-functions-core-tools',
    ]) {
      expect(existsSync(path.join(staged, 'node_modules', name)), name).toBe(false);
    }
  });

  it('holds no sources, tests, dev stack or infrastructure: only the bundle, the page and host.json', () => {
    const files = walk(staged)
      .filter((entry) => !entry.path.startsWith('node_modules/') && entry.path !== 'node_modules')
      .filter((entry) => entry.kind !== 'dir')
      .map((entry) => entry.path)
      .sort();
    expect(files.filter((file) => /\.(ts|mts|map)$/.test(file))).toEqual([]);
    for (const folder of [
      'test',
      'dev',
      'infra',
      'bench',
      'scripts',
      'docs',
      'dist/functions',
      'dist/lib',
    ]) {
      expect(existsSync(path.join(staged, folder)), folder).toBe(false);
    }
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/bundle/app.js',
        'host.json',
        'package.json',
        'src/web/index.html',
        'src/web/app.js',
      ]),
    );
  });

  it("ships this build, never an earlier run's: the staged bundle is the one azd's build makes", () => {
    expect(existsSync(path.join(staged, 'dist', 'stale-build.txt'))).toBe(false);
    const stagedBundle = readFileSync(path.join(staged, 'dist', 'bundle', 'app.js'), 'utf8');
    expect(stagedBundle).not.toContain('a stale build was shipped');
    expect(stagedBundle).toBe(readFileSync(path.join(clone, 'dist', 'bundle', 'app.js'), 'utf8'));
  });

  it("survives azd's zip as is (project_utils.go createDeployableZip): no .funcignore, no dangling symlink", () => {
    // A .funcignore in the package would be applied to it, node_modules included.
    expect(existsSync(path.join(staged, '.funcignore'))).toBe(false);
    const dangling = walk(staged)
      .filter((entry) => entry.kind === 'link')
      .filter((entry) => {
        try {
          statSync(path.join(staged, entry.path));
          return false;
        } catch {
          return true;
        }
      });
    expect(dangling).toEqual([]);
    expect(lstatSync(path.join(staged, 'node_modules')).isDirectory()).toBe(true);
  });

  it('serves /health, a full sign-in and a proxied GET /api/todos from exactly the staged folder', async () => {
    if (app === undefined) throw new Error('the staged app did not start');
    const health = await fetch(`${app.origin}/health`);
    expect(health.status).toBe(200);

    const agent = new UserAgent();
    expect(await signInThroughApp(agent, app.origin, user.preferred_username)).toBe(
      `${app.origin}/`,
    );
    const me = await agent.fetch(`${app.origin}/auth/me`);
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ username: user.preferred_username });

    const todos = await agent.fetch(`${app.origin}/api/todos`, {
      headers: { 'X-CSRF': '1', Origin: app.origin },
    });
    expect(todos.status).toBe(200);
    expect(Array.isArray(await todos.json())).toBe(true);
  });
});

describe('.funcignore as azd reads it', () => {
  it('does not ignore node_modules: azd refuses `remoteBuild: false` on Flex Consumption then (service_target_functionapp.go resolveFunctionAppRemoteBuild)', () => {
    const azureYaml = parseYaml(readFileSync(path.join(root, 'azure.yaml'), 'utf8')) as {
      services: Record<string, { remoteBuild?: boolean }>;
    };
    expect(Object.values(azureYaml.services).map((service) => service.remoteBuild)).toEqual([
      false,
    ]);
    expect(readFuncignore(root)('node_modules', true)).toBe(false);
  });
});

describe('the prepackage hook, when a step fails', () => {
  const hook = path.join(root, 'infra', 'hooks', 'prepackage.mjs');
  const projects: string[] = [];

  /** A project whose dependencies are installed (azd's test) and whose build is `build`. */
  function projectWithBuild(build: string): string {
    const project = mkdtempSync(path.join(tmpdir(), 'prepackage-'));
    projects.push(project);
    writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'p', version: '1.0.0', main: 'out/app.js', scripts: { build } }),
    );
    writeFileSync(
      path.join(project, 'package-lock.json'),
      JSON.stringify({ name: 'p', version: '1.0.0', lockfileVersion: 3, packages: {} }),
    );
    writeFileSync(path.join(project, '.funcignore'), '');
    mkdirSync(path.join(project, 'node_modules'));
    writeFileSync(path.join(project, 'node_modules', '.package-lock.json'), '{}');
    const past = new Date(Date.now() - MINUTE);
    utimesSync(path.join(project, 'package-lock.json'), past, past);
    return project;
  }

  afterAll(() => {
    for (const project of projects) rmSync(project, { recursive: true, force: true });
  });

  it('names the step and the failing command, and exits non-zero', async () => {
    const ran = await run('node', [hook], projectWithBuild('exit 3'), MINUTE);
    expect(ran.code, ran.output).toBe(1);
    expect(ran.output).toContain('prepackage [2/5] build the app');
    expect(ran.output).toContain(
      'prepackage: step 2/5 (build the app) failed: npm run build exited with code 3',
    );
    expect(ran.output).not.toContain('[3/5]');
  });

  it('fails when the build does not write package.json `main`, and ships nothing', async () => {
    const dir = projectWithBuild('node -e ""');
    const ran = await run('node', [hook], dir, MINUTE);
    expect(ran.code, ran.output).toBe(1);
    expect(ran.output).toContain(
      'prepackage: step 2/5 (build the app) failed: the build wrote no out/app.js',
    );
    expect(existsSync(path.join(dir, 'dist', 'deploy'))).toBe(false);
  });
});
