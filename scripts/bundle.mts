// Bundles the compiled function files (one per `src/functions/*.ts`, in the order the worker would load
// them) and the packages they use into the one file package.json `main` names. One file loads far
// faster than the 390-odd modules of the Azure SDK and MSAL: see docs/performance.md.
//
// Loaded on first use: @azure/msal-node, needed only to sign in or to get a token that memory
// does not hold; a process serving the page, /health or steady calls never loads it.
//
// Left to be required at run time: `@azure/functions-core` (the worker provides it), and what the
// app loads only when a deployment needs it, from node_modules as installed: @azure/identity (an
// identity-based table connection) and the OpenTelemetry packages (Application Insights).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const functionsDir = path.join(root, 'dist', 'functions');
const { main } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  main: string;
};

// The function files are those in src/functions, not whatever dist/functions holds: tsc never
// deletes output, so a function removed from src/ would otherwise live on in the bundle. dist/ is
// not emptied instead, since azd runs this build after the prepackage hook staged dist/deploy.
const sourcesDir = path.join(root, 'src', 'functions');
const files = readdirSync(sourcesDir)
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.replace(/\.ts$/, '.js'))
  .sort();
if (files.length === 0) throw new Error(`bundle: no function file in ${sourcesDir}`);
const missing = files.filter((file) => !existsSync(path.join(functionsDir, file)));
if (missing.length > 0) {
  throw new Error(`bundle: ${missing.join(', ')} not compiled in ${functionsDir}: run tsc first`);
}

/**
 * Bundles each of these packages as usual, but has the modules that import them get an object that
 * requires the package at the first property read (tsc's CommonJS output reads `pkg.Name` at the
 * point of use, so nothing changes but when the package loads).
 */
const LOADED_ON_FIRST_USE = ['@azure/msal-node'];
const loadOnFirstUse: Plugin = {
  name: 'load-on-first-use',
  setup(plugins) {
    const names = new RegExp(
      `^(${LOADED_ON_FIRST_USE.map((name) => name.replace(/[/]/g, '\\/')).join('|')})$`,
    );
    plugins.onResolve({ filter: names }, (args) =>
      args.namespace === 'first-use' ? undefined : { path: args.path, namespace: 'first-use' },
    );
    plugins.onLoad({ filter: /.*/, namespace: 'first-use' }, (args) => ({
      contents: `let loaded;
const load = () => (loaded ??= require(${JSON.stringify(args.path)}));
module.exports = new Proxy({}, {
  get: (_target, name) => load()[name],
  has: (_target, name) => name in load(),
});`,
      resolveDir: root,
      loader: 'js',
    }));
  },
};

const outfile = path.join(root, main);
await build({
  stdin: {
    contents: files.map((file) => `require('./functions/${file}');`).join('\n'),
    resolveDir: path.join(root, 'dist'),
    sourcefile: 'functions.js',
    loader: 'js',
  },
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  outfile,
  // Whitespace and syntax only, names kept: the host parses a third less and loads it faster
  // (docs/performance.md); the linked map gives stack traces their lines back
  // (node --enable-source-maps).
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  external: [
    '@azure/functions-core',
    '@azure/identity',
    '@azure/monitor-opentelemetry-exporter',
    '@opentelemetry/*',
  ],
  plugins: [loadOnFirstUse],
  logLevel: 'warning',
});
const kib = Math.round(statSync(outfile).size / 1024);
console.log(
  `bundle: ${files.length} function files → ${path.relative(root, outfile)} (${kib} KiB)`,
);
