/**
 * The packages as a user gets them: `npm pack` of every publishable package, installed together in an empty folder
 * (offline, from the npm cache that `npm ci` filled), with the root's allowScripts denials in that folder's
 * package.json. There the README's Node example samples an image, the installed `factorgen` runs from its built
 * JavaScript, and the README's web example bundles for the browser.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The packages meant to be installed: every workspace but tools/ (developer scripts, private). */
const shipped = ['packages/tfjs-ext', 'packages/nn', 'packages/formats', 'packages/io', 'packages/train', 'packages/tokenizer', 'packages/generator', 'packages/eval', 'packages/pipelines', 'apps/web', 'apps/cli'];

type Json = Record<string, unknown>;
type LockEntry = { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; peerDependencies?: Record<string, string>; link?: boolean; dev?: boolean; devOptional?: boolean; peer?: boolean; [k: string]: unknown };

const readJson = <T = Json>(file: string): T => JSON.parse(fs.readFileSync(file, 'utf8')) as T;

/**
 * Children run as a user's would: from the built output, so without the "source" condition and tsx that
 * vitest.config.ts puts in NODE_OPTIONS for the other tests' children.
 */
function run(cmd: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * A package-lock.json for the folder: the tarballs as file: dependencies, and every third-party package they need
 * (dependencies, present optional and peer dependencies) with the root lock's version, integrity and place in the
 * tree. With it `npm ci --offline` installs from the cache alone; without it npm would ask the registry for the
 * packuments that `npm ci` in the repository never fetched.
 */
function consumerLock(tarballs: Map<string, string>): Json {
  const lock = readJson<{ packages: Record<string, LockEntry> }>(path.join(root, 'package-lock.json')).packages;
  const packages: Record<string, LockEntry> = { '': { name: 'consumer', dependencies: Object.fromEntries([...tarballs].map(([n, f]) => [n, `file:${f}`])) } };
  const todo: { from: string; dep: string; soft: boolean }[] = [];
  for (const [name, file] of tarballs) {
    const pkg = readJson<Json & { dependencies?: Record<string, string>; bin?: unknown }>(path.join(root, String(lock[`node_modules/${name}`].resolved), 'package.json'));
    packages[`node_modules/${name}`] = { version: pkg.version, resolved: `file:${file}`, license: pkg.license, dependencies: pkg.dependencies, ...(pkg.bin ? { bin: pkg.bin } : {}) };
    for (const dep of Object.keys(pkg.dependencies ?? {})) todo.push({ from: `node_modules/${name}`, dep, soft: false });
  }
  // Node's lookup: the nearest node_modules/<dep> above the dependent, in the root lock's layout.
  const place = (from: string, dep: string): string => {
    for (let p = from; ; p = p.slice(0, p.lastIndexOf('/node_modules/'))) {
      const key = `${p}/node_modules/${dep}`;
      if (lock[key] && !lock[key].link) return key;
      if (!p.includes('/node_modules/')) return `node_modules/${dep}`;
    }
  };
  while (todo.length > 0) {
    const { from, dep, soft } = todo.pop()!;
    if (dep.startsWith('@factorgen/')) continue;
    const key = place(from, dep);
    if (packages[key]) continue;
    const entry = lock[key];
    if (!entry) {
      if (soft) continue; // an optional peer nobody installed
      throw new Error(`package-lock.json has no ${key} (needed by ${from})`);
    }
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...kept } = entry;
    packages[key] = kept;
    for (const d of Object.keys(entry.dependencies ?? {})) todo.push({ from: key, dep: d, soft: false });
    for (const d of [...Object.keys(entry.optionalDependencies ?? {}), ...Object.keys(entry.peerDependencies ?? {})]) todo.push({ from: key, dep: d, soft: true });
  }
  return { name: 'consumer', lockfileVersion: 3, requires: true, packages };
}

/** Every package installed under `nodeModules`, nested node_modules included. */
function installedPackages(nodeModules: string): { name: string; scripts?: Record<string, string> }[] {
  if (!fs.existsSync(nodeModules)) return [];
  const dirs = fs.readdirSync(nodeModules).filter((n) => !n.startsWith('.'))
    .flatMap((n) => (n.startsWith('@') ? fs.readdirSync(path.join(nodeModules, n)).map((m) => path.join(nodeModules, n, m)) : [path.join(nodeModules, n)]));
  return dirs.flatMap((d) => [
    readJson<{ name: string; scripts?: Record<string, string> }>(path.join(d, 'package.json')),
    ...installedPackages(path.join(d, 'node_modules')),
  ]);
}

/** The fenced ```js blocks of the README's "Use it as a library" section, in order. */
function readmeExamples(): string[] {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.split('\n## Use it as a library\n')[1]?.split('\n## ')[0];
  if (!section) throw new Error('README.md has no "## Use it as a library" section');
  return [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
}

describe('npm pack: the packages install together in an empty folder and work there', () => {
  let work = '';
  let app = '';
  let installLog = '';

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-pack-'));
    // The tarballs take build/ as it is: build it first, unless this is `npm test`, which has just built.
    if (process.env.npm_lifecycle_event !== 'test') ok(run('npm', ['run', 'build'], root, 300_000), 'npm run build');
    const tgz = path.join(work, 'tgz');
    fs.mkdirSync(tgz);
    const packed = JSON.parse(ok(run('npm', ['pack', '--json', '--pack-destination', tgz, ...shipped.flatMap((w) => ['-w', w])], root), 'npm pack')) as { name: string; filename: string }[];
    const tarballs = new Map(packed.map((p) => [p.name, path.join(tgz, p.filename)]));
    app = path.join(work, 'app');
    fs.mkdirSync(app);
    const rootPkg = readJson<{ allowScripts: Record<string, boolean> }>(path.join(root, 'package.json'));
    const lock = consumerLock(tarballs);
    const pkg = { name: 'consumer', private: true, type: 'module', dependencies: (lock.packages as Record<string, LockEntry>)[''].dependencies, allowScripts: rootPkg.allowScripts };
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(pkg, null, 2));
    fs.writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify(lock, null, 2));
    // --foreground-scripts --loglevel=info: npm logs "npm info run <pkg>@<version> <event>" for each script it runs.
    const r = run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts', '--loglevel=info'], app, 300_000);
    installLog = r.stdout + r.stderr;
    ok(r, 'npm ci --offline');
    // The models, as a user would have copied them.
    fs.symlinkSync(path.join(root, 'pretrained'), path.join(app, 'pretrained'));
  }, 600_000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('installs every package from its tarball, and runs none of the install scripts the root denies', () => {
    for (const w of shipped) {
      const name = readJson<{ name: string }>(path.join(root, w, 'package.json')).name;
      const installed = path.join(app, 'node_modules', name);
      expect(fs.lstatSync(installed).isSymbolicLink(), `${name} is a copy, not a link to the repository`).toBe(false);
      expect(fs.existsSync(path.join(installed, 'build')), `${name} has build/`).toBe(true);
    }
    const denied = Object.entries(readJson<{ allowScripts: Record<string, boolean> }>(path.join(root, 'package.json')).allowScripts)
      .filter(([, allowed]) => !allowed)
      .map(([name]) => name);
    // The installed packages that have install scripts: exactly the denied ones (so a denial that stopped
    // working, or a new dependency with a script, shows here).
    const withScripts = installedPackages(path.join(app, 'node_modules'))
      .filter((p) => ['preinstall', 'install', 'postinstall'].some((s) => p.scripts?.[s]))
      .map((p) => p.name);
    expect([...new Set(withScripts)].sort()).toEqual([...denied].sort());
    expect(installLog.split('\n').filter((l) => /^npm info run /.test(l))).toEqual([]);
    expect(installLog).not.toContain('not yet covered by allowScripts');
  });

  it("the README's Node example samples the image that the installed factorgen sample writes", () => {
    const [nodeExample] = readmeExamples();
    fs.writeFileSync(path.join(app, 'example.mjs'), nodeExample);
    ok(run(process.execPath, ['example.mjs'], app), 'node example.mjs');
    const bin = path.join(app, 'node_modules', '.bin', 'factorgen');
    const cli = ok(run(bin, ['sample', '--generator', 'pretrained/generator', '--classes', '7', '--per-class', '1', '--backend', 'wasm', '--out', 'cli'], app), 'factorgen sample');
    expect(JSON.parse(cli)).toMatchObject({ out: 'cli', images: 1 });
    const fromLibrary = fs.readFileSync(path.join(app, 'sneaker.png'));
    expect(fromLibrary.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(fromLibrary.equals(fs.readFileSync(path.join(app, 'cli', '7-sneaker', '0000.png')))).toBe(true);
  });

  it('the installed factorgen runs its built JavaScript: --help and --version', () => {
    const bin = path.join(app, 'node_modules', '.bin', 'factorgen');
    const help = ok(run(bin, ['--help'], app), 'factorgen --help');
    expect(help.split('\n')[0]).toBe('Usage: factorgen [options] [command]');
    expect(help).toContain('sample [options]');
    const version = readJson<{ version: string }>(path.join(root, 'apps/cli/package.json')).version;
    expect(ok(run(bin, ['--version'], app), 'factorgen --version')).toBe(`${version}\n`);
    // No TypeScript at run time: tsx is not even installed.
    expect(fs.existsSync(path.join(app, 'node_modules', 'tsx'))).toBe(false);
  });

  it("the README's web example bundles for the browser from the installed packages", () => {
    const [, webExample] = readmeExamples();
    fs.writeFileSync(path.join(app, 'app.js'), webExample);
    const esbuild = path.join(app, 'node_modules', '.bin', 'esbuild');
    // platform=browser: a Node module (node:fs, sharp) anywhere in the graph fails the bundle.
    ok(run(esbuild, ['app.js', '--bundle', '--format=esm', '--platform=browser', '--outfile=public/app.js', '--log-level=error'], app), 'esbuild app.js');
    const js = fs.readFileSync(path.join(app, 'public', 'app.js'), 'utf8');
    expect(js).toContain('/models/generator');
    expect(js.length).toBeGreaterThan(100_000);
  });
});
