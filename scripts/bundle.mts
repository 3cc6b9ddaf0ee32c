// Bundles the compiled function files (`dist/functions/*.js`, in the order the worker would load
// them) and the packages they use into the one file package.json `main` names. One file loads far
// faster than the 390-odd modules of the Azure SDK, MSAL and axios: see docs/performance.md.
//
// Left to be required at run time: `@azure/functions-core` (the worker provides it), and what the
// app loads only when a deployment needs it, from node_modules as installed: @azure/identity (an
// identity-based table connection) and the OpenTelemetry packages (Application Insights).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const functionsDir = path.join(root, 'dist', 'functions');
const { main } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  main: string;
};

const files = readdirSync(functionsDir)
  .filter((file) => file.endsWith('.js'))
  .sort();
if (files.length === 0)
  throw new Error(`bundle: no function file in ${functionsDir}: run tsc first`);

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
  logLevel: 'warning',
});
const kib = Math.round(statSync(outfile).size / 1024);
console.log(
  `bundle: ${files.length} function files → ${path.relative(root, outfile)} (${kib} KiB)`,
);
