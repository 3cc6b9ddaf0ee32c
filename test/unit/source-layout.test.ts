import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'web' && dir === SRC ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every relative module a file imports, type-only imports included: they tie modules together too. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].flatMap((m) =>
    m[1] === undefined ? [] : [m[1]],
  );
  return specifiers.map((spec) =>
    path.resolve(path.dirname(file), `${spec.replace(/\.js$/, '')}.ts`),
  );
}

function cyclesIn(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const visit = (node: string, trail: string[]): void => {
    const at = trail.indexOf(node);
    if (at >= 0) {
      cycles.push(trail.slice(at).concat(node));
      return;
    }
    if (done.has(node)) return;
    for (const next of graph.get(node) ?? []) visit(next, [...trail, node]);
    done.add(node);
  };
  for (const node of graph.keys()) visit(node, []);
  return cycles;
}

describe('source layout', () => {
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((file) => [file, importsOf(file)]));
  const relative = (file: string): string => path.relative(SRC, file);

  it('has no import cycle in src/ (type-only imports count)', () => {
    expect(cyclesIn(graph).map((cycle) => cycle.map(relative).join(' -> '))).toEqual([]);
  });

  it('finds a cycle when there is one (the check itself can fail)', () => {
    const a = path.join(SRC, 'a.ts');
    const b = path.join(SRC, 'b.ts');
    expect(
      cyclesIn(
        new Map([
          [a, [b]],
          [b, [a]],
        ]),
      ).map((c) => c.map(relative)),
    ).toEqual([['a.ts', 'b.ts', 'a.ts']]);
  });

  it('imports only files that exist', () => {
    const known = new Set(files);
    const missing = [...graph].flatMap(([file, targets]) =>
      targets.filter((t) => !known.has(t)).map((t) => `${relative(file)} -> ${relative(t)}`),
    );
    expect(missing).toEqual([]);
  });

  it('reads process.env only in src/lib/config.ts', () => {
    const readers = files.filter((file) => readFileSync(file, 'utf8').includes('process.env'));
    expect(readers.map(relative)).toEqual([path.join('lib', 'config.ts')]);
  });
});
