// azd `prepackage` hook: stages what the function app runs in Azure into dist/deploy (azure.yaml
// `dist`), after azd has run `npm install` and `npm run build`.
//
// The project folder itself is no deployment package: its node_modules holds the development stack
// (Azurite, the emulator, a Node.js binary, Core Tools), and a remote build would install all of
// that on the server too. Here the files `.funcignore` lets through are copied, then production
// dependencies only are installed from the lockfile. Plain Node.js (18+), no dependency: azd runs
// hooks with the machine's own `node`.

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

const root = process.cwd();
const stage = path.join(root, 'dist', 'deploy');
// Never copied: replaced by a production install, azd's own state, the staging folder itself, and
// the ignore file (azd must not apply it again to production node_modules).
const alwaysSkipped = new Set(['node_modules', '.azure', '.git', 'dist/deploy', '.funcignore']);

/** A `.funcignore` line (gitignore syntax without negation) as a test on a relative posix path. */
function toMatcher(line) {
  let pattern = line.trim();
  if (pattern === '' || pattern.startsWith('#')) return undefined;
  if (pattern.startsWith('!')) {
    throw new Error(`.funcignore: negated patterns are not supported here: ${pattern}`);
  }
  const directoryOnly = pattern.endsWith('/');
  pattern = pattern.replace(/\/+$/, '');
  // As in gitignore: a pattern with an inner slash is anchored at the root, any other matches a
  // name at any depth.
  const anchored = pattern.includes('/');
  const escape = (text) => text.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  const body = pattern
    .replace(/^\//, '')
    .split('**')
    .map((part) =>
      part
        .split('*')
        .map((piece) => piece.split('?').map(escape).join('[^/]'))
        .join('[^/]*'),
    )
    .join('.*');
  const regex = new RegExp(anchored ? `^${body}$` : `(^|/)${body}$`);
  return (relative, isDirectory) => (!directoryOnly || isDirectory) && regex.test(relative);
}

const ignored = readFileSync(path.join(root, '.funcignore'), 'utf8')
  .split(/\r?\n/)
  .map(toMatcher)
  .filter((matcher) => matcher !== undefined);

function copyTree(relativeDir) {
  for (const entry of readdirSync(path.join(root, relativeDir), { withFileTypes: true })) {
    const relative = relativeDir === '' ? entry.name : `${relativeDir}/${entry.name}`;
    const isDirectory = entry.isDirectory();
    if (alwaysSkipped.has(relative) || ignored.some((matches) => matches(relative, isDirectory))) {
      continue;
    }
    if (isDirectory) {
      copyTree(relative);
    } else if (entry.isFile()) {
      // Made on demand, so a folder of sources only (src/lib) leaves no empty folder behind.
      mkdirSync(path.join(stage, relativeDir), { recursive: true });
      copyFileSync(path.join(root, relative), path.join(stage, relative));
    }
  }
}

rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
copyTree('');

const npm = spawnSync(
  'npm',
  ['ci', '--omit=dev', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund'],
  { cwd: stage, stdio: 'inherit', shell: process.platform === 'win32' },
);
if (npm.status !== 0) {
  process.stderr.write('prepackage: installing production dependencies failed\n');
  process.exit(npm.status ?? 1);
}
process.stdout.write(`prepackage: staged ${path.relative(root, stage)}\n`);
