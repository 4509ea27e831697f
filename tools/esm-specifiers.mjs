#!/usr/bin/env node
// Runs after `tsc -b` (npm run build): gives the relative import specifiers in every package's build/ output the file
// extension Node's ES module loader needs. The sources import without extensions ('./config'), which TypeScript
// (moduleResolution Bundler), vitest and esbuild resolve, but Node does not; tsc copies specifiers as written.
// './config' -> './config.js', './kernels' -> './kernels/index.js', in .js and .d.ts files (a .d.ts read by a
// consumer with moduleResolution node16 needs them too). Idempotent: a specifier with an extension is left alone,
// so it can run after every incremental build. A specifier that matches no emitted file fails the build.
// Plain JavaScript so that it runs before anything is built.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workspaces = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).workspaces;

// `from '...'`, `import '...'` (side effect), `import('...')`: the places a module specifier stands.
const SPECIFIER = /(\bfrom\s*|^\s*import\s*|\bimport\s*\(\s*)(['"])(\.\.?\/[^'"\n]*)\2/gm;

function* files(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (/\.(js|d\.ts)$/.test(e.name)) yield p;
  }
}

// tsc -b never deletes the output of a source that was moved or removed; such a stale file would still import its
// old neighbours. Outputs (and their maps) whose src/<name>.ts is gone are removed first.
function removeStale(build, src) {
  for (const file of [...files(build)]) {
    const base = path.relative(build, file).replace(/\.(d\.ts|js)$/, '');
    if (fs.existsSync(path.join(src, `${base}.ts`)) || fs.existsSync(path.join(src, `${base}.tsx`))) continue;
    for (const f of [file, `${file}.map`]) fs.rmSync(f, { force: true });
  }
}

function fixed(file, spec) {
  if (/\.(m?js|cjs|json)$/.test(spec)) return spec;
  const target = path.resolve(path.dirname(file), spec);
  if (fs.existsSync(`${target}.js`)) return `${spec}.js`;
  if (fs.existsSync(path.join(target, 'index.js'))) return `${spec.replace(/\/$/, '')}/index.js`;
  throw new Error(`esm-specifiers: ${path.relative(root, file)} imports '${spec}', which is no emitted module`);
}

let changed = 0;
for (const ws of workspaces) {
  const build = path.join(root, ws, 'build');
  if (!fs.existsSync(build)) continue;
  removeStale(build, path.join(root, ws, 'src'));
  for (const file of files(build)) {
    const text = fs.readFileSync(file, 'utf8');
    const out = text.replace(SPECIFIER, (_m, lead, q, spec) => `${lead}${q}${fixed(file, spec)}${q}`);
    if (out !== text) {
      fs.writeFileSync(file, out);
      changed++;
    }
  }
}
if (process.argv.includes('--verbose')) console.log(`esm-specifiers: ${changed} files rewritten`);
