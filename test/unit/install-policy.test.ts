// `npm ci` on a fresh clone stays quiet: every install script in the lockfile is approved or denied
// in package.json `allowScripts` (npm 11 warns about any other), and the project's own engine
// check is npm's devEngines (the machine's Node only runs npm; scripts run on the bundled Node 22).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devEngines?: { runtime?: { name: string; version: string } };
  allowScripts?: Record<string, boolean>;
  devDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { hasInstallScript?: boolean }>;
};

describe('npm ci', () => {
  it('finds every package with an install script approved or denied by name in allowScripts', () => {
    const withScripts = Object.entries(lock.packages)
      .filter(([location, entry]) => location !== '' && entry.hasInstallScript === true)
      .map(([location]) => location.slice(location.lastIndexOf('node_modules/') + 13));
    expect(withScripts.length).toBeGreaterThan(0);
    const unreviewed = [...new Set(withScripts)].filter(
      (name) => typeof manifest.allowScripts?.[name] !== 'boolean',
    );
    expect(unreviewed).toEqual([]);
  });

  it('runs the install scripts the project needs: esbuild, the bundled Node, tree-sitter', () => {
    for (const name of ['esbuild', 'node', 'tree-sitter', 'tree-sitter-bicep']) {
      expect(manifest.allowScripts?.[name], name).toBe(true);
    }
  });

  it('checks the machine’s Node against devEngines (what npm needs), the app’s against engines', () => {
    // npm skips the root package's `engines` warning when devEngines is present
    // (@npmcli/arborist build-ideal-tree.js #checkEngineAndPlatform).
    expect(manifest.devEngines?.runtime).toMatchObject({
      name: 'node',
      version: '^20.17.0 || >=22.9.0',
    });
    expect(manifest.engines.node).toBe('>=22');
    expect(manifest.devDependencies.node).toMatch(/^\^22\./);
  });
});
