import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');

describe('Ctrl-C during sample says what stopped and what the output holds', () => {
  it('sample interrupted by SIGINT: exit 130 and one line naming the incomplete folder (was: nothing on stderr)', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fg-int-')), 'samples');
    const child = spawn(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'sample', '--generator', 'pretrained/generator', '--out', out, '--per-class', '50', '--batch', '10'], { cwd: root });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // Once the first batch is on disk the run is under way.
    while (!(fs.existsSync(out) && fs.readdirSync(out).some((d) => /^\d+-/.test(d)))) {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    expect(await done, err).toBe(130);
    expect(err.trim().split('\n').at(-1)).toBe(`factorgen: stopped by SIGINT; ${out} is incomplete (what is there was written whole; .factorgen.json lists what was planned)`);
  }, 180_000);

  it('encode interrupted by SIGINT: exit 130 and one line saying the token file was not written (it is written whole at the end)', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fg-int-')), 'train.tokens');
    const child = spawn(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'tokenizer', 'encode', '--tokenizer', 'pretrained/tokenizer', '--out', out], { cwd: root });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // The backend line comes first; encoding 60000 images then takes minutes, so a signal 1.5 s later lands mid-work.
    while (!err.includes('backend:') && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    expect(await done, err).toBe(130);
    expect(err.trim().split('\n').at(-1)).toBe(`factorgen: stopped by SIGINT; ${out} was not written (written whole at the end)`);
    expect(fs.existsSync(out)).toBe(false);
  }, 180_000);
});
