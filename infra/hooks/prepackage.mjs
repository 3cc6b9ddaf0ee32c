// azd `prepackage` hook: builds the app and stages what the function app runs in Azure into
// dist/deploy (azure.yaml `dist`), which azd then zips as is and deploys.
//
// The hook builds for itself because azd builds only after it. For a Node.js service azd's
// `package` step (azure-dev cli/azd/pkg/project/service_manager.go, Package) restores first
// (`npm install`, skipped when node_modules is newer than package-lock.json), then fires
// `prepackage`, and only then runs `npm run build` (framework_service_node.go: Requirements has
// RequireBuild false; nodeProject.Package runs the build script). Whatever dist/ held when this hook
// started is an earlier run's build, or nothing on a fresh clone: it is deleted, never shipped.
//
// The project folder itself is no deployment package: its node_modules holds the development stack
// (Azurite, the emulator, a Node.js binary, Core Tools), and a remote build would install all of
// that on the server too. So the files `.funcignore` lets through are copied, then production
// dependencies only are installed from the lockfile.
//
// Plain Node.js (18+), no dependency: azd runs hooks with the machine's own `node`. The build runs
// on the project's Node 22 all the same: `npm run` puts node_modules/.bin (where the `node`
// devDependency installs it) first on the PATH.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { readFuncignore } from './funcignore.mjs';

const root = process.cwd();
const dist = path.join(root, 'dist');
const stage = path.join(dist, 'deploy');
const steps = [
  'install the build tools',
  'build the app',
  'copy the app',
  'install production dependencies',
  'check the package',
];

class StepFailure extends Error {}

/** The step running, -1 before the first. */
let current = -1;
function step(index) {
  current = index;
  process.stdout.write(`prepackage [${index + 1}/${steps.length}] ${steps[index]}\n`);
}

function note(message) {
  process.stdout.write(`prepackage:   ${message}\n`);
}

/** Runs npm with its output shown (these steps take a while); a failure ends the hook. */
function npm(args, cwd) {
  note(`npm ${args.join(' ')}${cwd === root ? '' : ` (in ${path.relative(root, cwd)})`}`);
  const result = spawnSync('npm', args, {
    cwd,
    stdio: 'inherit',
    // npm is npm.cmd on Windows, which only a shell runs.
    shell: process.platform === 'win32',
  });
  if (result.error) throw new StepFailure(`npm could not be started: ${result.error.message}`);
  if (result.status !== 0) {
    throw new StepFailure(
      `npm ${args[0]}${args[0] === 'run' ? ` ${args[1]}` : ''} exited with ` +
        (result.status === null ? `signal ${result.signal}` : `code ${result.status}`),
    );
  }
}

function readPackageJson(folder) {
  return JSON.parse(readFileSync(path.join(folder, 'package.json'), 'utf8'));
}

/**
 * azd's own test before it reinstalls (azure-dev cli/azd/pkg/tools/node/detect.go,
 * IsDependenciesUpToDate): npm's record of what it installed is no older than the lockfile.
 */
function installedFromLockfile() {
  const record = path.join(root, 'node_modules', '.package-lock.json');
  return (
    existsSync(record) &&
    statSync(record).mtimeMs >= statSync(path.join(root, 'package-lock.json')).mtimeMs
  );
}

// Never copied: replaced by a production install, azd's own state, the build output other than
// what `.funcignore` keeps, and the ignore file: azd zips dist/deploy with the `.funcignore` it
// finds there (azure-dev cli/azd/pkg/project/project_utils.go, createDeployableZip), and without
// one it keeps node_modules, as `remoteBuild: false` asks.
const alwaysSkipped = new Set(['node_modules', '.azure', '.git', 'dist/deploy', '.funcignore']);

function copyTree(ignored, relativeDir) {
  let files = 0;
  for (const entry of readdirSync(path.join(root, relativeDir), { withFileTypes: true })) {
    const relative = relativeDir === '' ? entry.name : `${relativeDir}/${entry.name}`;
    const isDirectory = entry.isDirectory();
    if (alwaysSkipped.has(relative) || ignored(relative, isDirectory)) continue;
    if (isDirectory) {
      files += copyTree(ignored, relative);
    } else if (entry.isFile()) {
      // Made on demand, so a folder of sources only (src/lib) leaves no empty folder behind.
      mkdirSync(path.join(stage, relativeDir), { recursive: true });
      copyFileSync(path.join(root, relative), path.join(stage, relative));
      files += 1;
    }
  }
  return files;
}

function folderSize(folder) {
  let bytes = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const entryPath = path.join(folder, entry.name);
    if (entry.isDirectory()) bytes += folderSize(entryPath);
    else if (entry.isFile()) bytes += statSync(entryPath).size;
  }
  return bytes;
}

function run() {
  const { main, dependencies = {} } = readPackageJson(root);
  if (typeof main !== 'string') throw new StepFailure('package.json names no `main`');

  step(0);
  if (installedFromLockfile()) {
    note('node_modules is up to date with package-lock.json');
  } else {
    note('node_modules is missing or older than package-lock.json');
    npm(['ci', '--no-audit', '--no-fund'], root);
  }

  step(1);
  // An earlier run's output would otherwise be shipped beside (or instead of) this one's.
  rmSync(dist, { recursive: true, force: true });
  npm(['run', 'build'], root);
  if (!existsSync(path.join(root, main))) {
    throw new StepFailure(`the build wrote no ${main} (package.json \`main\`)`);
  }

  step(2);
  mkdirSync(stage, { recursive: true });
  note(`${copyTree(readFuncignore(root), '')} files copied into ${path.relative(root, stage)}`);

  step(3);
  // Errors only: npm would warn that the machine's Node.js is older than the packages' `engines`,
  // which is the app's runtime in Azure (Node.js 22), not this one.
  npm(
    [
      'ci',
      '--omit=dev',
      '--omit=optional',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
    ],
    stage,
  );

  step(4);
  if (!existsSync(path.join(stage, main))) {
    throw new StepFailure(`${path.relative(root, stage)} has no ${main} (package.json \`main\`)`);
  }
  const missing = Object.keys(dependencies).filter(
    (name) => !existsSync(path.join(stage, 'node_modules', name, 'package.json')),
  );
  if (missing.length > 0) {
    throw new StepFailure(`production dependencies not installed: ${missing.join(', ')}`);
  }
  const megabytes = (folderSize(stage) / 1024 / 1024).toFixed(1);
  note(`${path.relative(root, stage)} holds ${main} and its dependencies (${megabytes} MB)`);
}

try {
  run();
  process.stdout.write(`prepackage: staged ${path.relative(root, stage)}\n`);
} catch (error) {
  const reason = error instanceof Error ? error.message : String(error);
  const where =
    current < 0
      ? 'reading package.json'
      : `step ${current + 1}/${steps.length} (${steps[current]})`;
  process.stderr.write(
    `prepackage: ${where} failed: ${reason}\n` +
      (error instanceof StepFailure ? '' : `${error instanceof Error ? error.stack : ''}\n`),
  );
  process.exit(1);
}
