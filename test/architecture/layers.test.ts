/**
 * The package layout holds: model packages import nothing from Node, sharp or commander; every package imports only
 * packages below it (and declares them); the package graph has no cycles; tests import code only through package
 * names. Read from the source files themselves, so a new import that breaks a rule fails here with its file and line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@factorgen/io';

const root = repoRoot();

/** Bottom to top: a package may import only packages before it. */
const LAYERS: { name: string; dir: string; pure: boolean }[] = [
  { name: '@factorgen/tfjs-ext', dir: 'packages/tfjs-ext', pure: true },
  { name: '@factorgen/nn', dir: 'packages/nn', pure: true },
  { name: '@factorgen/formats', dir: 'packages/formats', pure: true },
  { name: '@factorgen/tokenizer', dir: 'packages/tokenizer', pure: true },
  { name: '@factorgen/generator', dir: 'packages/generator', pure: true },
  { name: '@factorgen/eval', dir: 'packages/eval', pure: true },
  { name: '@factorgen/io', dir: 'packages/io', pure: false },
  { name: '@factorgen/train', dir: 'packages/train', pure: false },
  { name: '@factorgen/pipelines', dir: 'packages/pipelines', pure: false },
  { name: '@factorgen/web', dir: 'apps/web', pure: false },
  { name: '@factorgen/cli', dir: 'apps/cli', pure: false },
  { name: '@factorgen/tools', dir: 'tools', pure: false },
];
/** Node-only entry points inside a pure package (their own folder). */
const NODE_ENTRIES = ['packages/tfjs-ext/src/node/'];
/** Modules a pure package must not reach: Node's own, and the CLI / image libraries that need Node. */
const NODE_ONLY = /^(node:|fs$|path$|os$|child_process$|worker_threads$|crypto$|sharp$|commander$)/;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(path.join(root, dir));
  return out;
}

/** Static import / export-from / dynamic import specifiers of a file, with their line numbers. */
function importsOf(file: string): { spec: string; line: number }[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: { spec: string; line: number }[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\('([^']+)'\)|^import\s+'([^']+)'/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const spec = m[1] ?? m[2] ?? m[3];
    found.push({ spec, line: text.slice(0, m.index + m[0].length).split('\n').length });
  }
  return found;
}

const packageName = (spec: string) => spec.split('/').slice(0, 2).join('/');

describe('package layout', () => {
  it('model packages import nothing that needs Node (node:*, sharp, commander)', () => {
    const bad: string[] = [];
    for (const l of LAYERS.filter((x) => x.pure)) {
      for (const f of sourceFiles(`${l.dir}/src`)) {
        const rel = path.relative(root, f);
        if (NODE_ENTRIES.some((e) => rel.startsWith(e))) continue;
        for (const { spec, line } of importsOf(f)) if (NODE_ONLY.test(spec)) bad.push(`${rel}:${line} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('a package imports only packages below it, and declares each in its package.json', () => {
    const bad: string[] = [];
    LAYERS.forEach((l, i) => {
      const below = new Set(LAYERS.slice(0, i).map((x) => x.name));
      const declared = new Set(Object.keys((JSON.parse(fs.readFileSync(path.join(root, l.dir, 'package.json'), 'utf8')) as { dependencies?: object }).dependencies ?? {}));
      for (const f of sourceFiles(`${l.dir}/src`)) {
        for (const { spec, line } of importsOf(f)) {
          if (!spec.startsWith('@factorgen/')) continue;
          const p = packageName(spec);
          const rel = path.relative(root, f);
          if (p === l.name) bad.push(`${rel}:${line} imports its own package by name (${spec})`);
          else if (!below.has(p)) bad.push(`${rel}:${line} imports ${p}, which is not below ${l.name}`);
          else if (!declared.has(p)) bad.push(`${rel}:${line} imports ${p}, missing from ${l.dir}/package.json`);
        }
      }
    });
    expect(bad).toEqual([]);
  });

  it('every workspace package is placed in the layer order', () => {
    const workspaces = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    expect([...workspaces].sort()).toEqual(LAYERS.map((l) => l.dir).sort());
  });

  it('tests and benchmarks import project code only through package names', () => {
    const bad: string[] = [];
    for (const dir of ['test', 'bench']) {
      for (const f of sourceFiles(dir)) {
        for (const { spec, line } of importsOf(f)) {
          if (/^(\.\.\/)+(packages|apps|tools)\//.test(spec) || spec.includes('/src/')) bad.push(`${path.relative(root, f)}:${line} imports ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('no package holds more than about a quarter of the code', () => {
    const lines = LAYERS.map((l) => ({ dir: l.dir, n: sourceFiles(`${l.dir}/src`).reduce((s, f) => s + fs.readFileSync(f, 'utf8').split('\n').length, 0) }));
    const total = lines.reduce((s, x) => s + x.n, 0);
    for (const x of lines) expect(x.n / total, x.dir).toBeLessThan(0.27);
  });
});
