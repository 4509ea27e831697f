import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-site-'));

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const list = (dir: string): string[] =>
  (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();

describe('factorgen web build', () => {
  it('writes the page, the wasm binaries and the model files (no optimizer state) as a static folder', () => {
    const out = path.join(work, 'site');
    const r = cli('web', 'build', '--generator', 'pretrained/generator', '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(list(out)).toEqual([
      '.factorgen.json', 'app.js', 'index.html',
      'model/generator/config.json', 'model/generator/model.safetensors', 'model/tokenizer/config.json', 'model/tokenizer/model.safetensors',
      'wasm/tfjs-backend-wasm-simd.wasm', 'wasm/tfjs-backend-wasm-threaded-simd.wasm', 'wasm/tfjs-backend-wasm.wasm',
    ]);
    for (const f of ['generator/model.safetensors', 'tokenizer/config.json']) {
      expect(fs.readFileSync(path.join(out, 'model', f)).equals(fs.readFileSync(path.join(root, 'pretrained', f)))).toBe(true);
    }
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('<script type="module" src="app.js"></script>');
    // Building again over the earlier site is fine.
    expect(cli('web', 'build', '--generator', 'pretrained/generator', '--out', out).code).toBe(0);
  });

  it('refuses a folder that holds something else, and a tokenizer the generator was not trained with', () => {
    const foreign = path.join(work, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    let r = cli('web', 'build', '--generator', 'pretrained/generator', '--out', foreign);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`factorgen: --out ${foreign}: folder is not empty and holds no site factorgen built (no .factorgen.json of kind "site"); refusing to write into it, choose an empty or new folder\n`);
    expect(fs.readdirSync(foreign)).toEqual(['notes.txt']);
    // A generator given as its own tokenizer: wrong kind, one line.
    r = cli('serve', '--generator', 'pretrained/generator', '--tokenizer', 'pretrained/generator', '--port', '0');
    expect(r.code).toBe(2);
    expect(r.err).toBe('factorgen: pretrained/generator: expected a tokenizer checkpoint, found a generator checkpoint\n');
  });

  it("refuses a user's own site (index.html, app.js, model/) instead of taking it for an earlier build, and a build with files added", () => {
    const mine = path.join(work, 'mine');
    fs.mkdirSync(path.join(mine, 'model/generator'), { recursive: true });
    const own = { 'index.html': '<p>my page</p>', 'app.js': 'alert(1)', 'model/generator/config.json': '{"mine":true}' };
    for (const [f, c] of Object.entries(own)) fs.writeFileSync(path.join(mine, f), c);
    let r = cli('web', 'build', '--generator', 'pretrained/generator', '--out', mine);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`factorgen: --out ${mine}: folder is not empty and holds no site factorgen built (no .factorgen.json of kind "site"); refusing to write into it, choose an empty or new folder\n`);
    for (const [f, c] of Object.entries(own)) expect(fs.readFileSync(path.join(mine, f), 'utf8')).toBe(c);
    expect(list(mine)).toEqual(['app.js', 'index.html', 'model/generator/config.json']);
    // A manifest of another kind does not make a folder a site either.
    fs.writeFileSync(path.join(mine, '.factorgen.json'), JSON.stringify({ factorgen: 1, kind: 'samples', paths: ['index.html', 'app.js'] }));
    r = cli('web', 'build', '--generator', 'pretrained/generator', '--out', mine);
    expect(r.err).toBe(`factorgen: --out ${mine}: folder is not empty and holds samples, not a site; refusing to write into it, choose an empty or new folder\n`);
    expect(fs.readFileSync(path.join(mine, 'index.html'), 'utf8')).toBe(own['index.html']);

    // A site factorgen built, to which the user added a page: the rebuild refuses, naming it, and touches nothing.
    const built = path.join(work, 'built');
    expect(cli('web', 'build', '--generator', 'pretrained/generator', '--out', built).code).toBe(0);
    fs.writeFileSync(path.join(built, 'about.html'), 'about me');
    r = cli('web', 'build', '--generator', 'pretrained/generator', '--out', built);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`factorgen: --out ${built}: also holds files factorgen did not write ("about.html"); a rebuild replaces only the site's own files, so move them or choose another folder\n`);
    expect(fs.readFileSync(path.join(built, 'about.html'), 'utf8')).toBe('about me');
  }, 120_000);
});
