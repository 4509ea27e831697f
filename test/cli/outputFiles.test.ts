/**
 * Commands that write one file (`tokenizer encode --out`, `report --out`, `eval ... --out`) never replace an existing
 * file without --overwrite, and `encode --overwrite` replaces only a token file: a mistyped --out cannot destroy a
 * user's file. Exact lines; the file is unchanged after every refusal.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLine, runCliProcess } from '../robustness/fixtures';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-outfiles-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const encode = (out: string, ...more: string[]) =>
  runCliProcess(['tokenizer', 'encode', '--tokenizer', 'pretrained/tokenizer', '--split', 'test', '--limit', '3', '--backend', 'wasm', '--out', out, ...more]);

describe('single output files', () => {
  it('encode: refuses an existing file without --overwrite, refuses a non-token file even with it, replaces a token file with it', async () => {
    const notes = path.join(root, 'notes.md');
    fs.writeFileSync(notes, '# my notes\n');
    expectOneLine(await encode(notes), 2, `factorgen: --out ${notes}: already exists; pass --overwrite to replace it`);
    expectOneLine(
      await encode(notes, '--overwrite'),
      2,
      `factorgen: --out ${notes}: already exists and is not a file factorgen writes here (it does not start with "FGTOKEN1"); --overwrite replaces only those`,
    );
    expect(fs.readFileSync(notes, 'utf8')).toBe('# my notes\n');

    const tokens = path.join(root, 't.tokens');
    expect((await encode(tokens)).code).toBe(0);
    const first = fs.readFileSync(tokens);
    expect(first.subarray(0, 8).toString('latin1')).toBe('FGTOKEN1');
    expectOneLine(await encode(tokens, '--limit', '2'), 2, `factorgen: --out ${tokens}: already exists; pass --overwrite to replace it`);
    expect(fs.readFileSync(tokens).equals(first)).toBe(true);
    expect((await encode(tokens, '--limit', '2', '--overwrite')).code).toBe(0);
    expect(fs.readFileSync(tokens).length).toBeLessThan(first.length);
  }, 120_000);

  it('report: refuses an existing --out file without --overwrite and leaves it as it was', async () => {
    const page = path.join(root, 'page.html');
    fs.writeFileSync(page, 'mine');
    expectOneLine(await runCliProcess(['report', 'pretrained/generator', '--out', page]), 2, `factorgen: --out ${page}: already exists; pass --overwrite to replace it`);
    expectOneLine(
      await runCliProcess(['report', 'pretrained/generator', '--out', page, '--overwrite']),
      2,
      `factorgen: --out ${page}: already exists and is not a file factorgen writes here (it does not start with "<!doctype html>"); --overwrite replaces only those`,
    );
    expect(fs.readFileSync(page, 'utf8')).toBe('mine');
    // A training run's own metrics log is never an output file, --overwrite or not (its checkpoint likewise).
    const run = path.join(root, 'run');
    fs.mkdirSync(run);
    fs.writeFileSync(path.join(run, '.factorgen.json'), JSON.stringify({ factorgen: 1, kind: 'generator run', paths: ['metrics.jsonl'] }));
    const log = path.join(run, 'metrics.jsonl');
    fs.writeFileSync(log, '{"step":1}\n');
    expectOneLine(
      await runCliProcess(['report', 'pretrained/generator', '--out', log, '--overwrite']),
      2,
      `factorgen: --out ${log}: the metrics log of the training run ${run}, which only that run writes; choose another file`,
    );
    expect(fs.readFileSync(log, 'utf8')).toBe('{"step":1}\n');
  }, 60_000);

  it('tokenizer reconstruct: refuses a folder holding a user file, records what it wrote, replaces it only with --overwrite', async () => {
    const rec = (out: string, ...more: string[]) =>
      runCliProcess(['tokenizer', 'reconstruct', '--tokenizer', 'pretrained/tokenizer', '--limit', '4', '--grid', '4', '--backend', 'wasm', '--out', out, ...more]);
    const mixed = path.join(root, 'mixed');
    fs.mkdirSync(mixed);
    fs.writeFileSync(path.join(mixed, 'mine.txt'), 'keep');
    expectOneLine(await rec(mixed), 2, `factorgen: --out ${mixed}: is not empty (mine.txt); pass --overwrite to replace it or choose another folder`);
    expect(fs.readdirSync(mixed)).toEqual(['mine.txt']);

    const fresh = path.join(root, 'recon');
    expect((await rec(fresh)).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(fresh, '.factorgen.json'), 'utf8'))).toEqual({ factorgen: 1, kind: 'reconstructions', paths: ['recon.png', 'metrics.json'] });
    expectOneLine(await rec(fresh), 2, `factorgen: --out ${fresh}: already holds reconstructions; pass --overwrite to replace it or choose another folder`);
    expect((await rec(fresh, '--overwrite')).code).toBe(0);
    expect(fs.readdirSync(fresh).sort()).toEqual(['.factorgen.json', 'metrics.json', 'recon.png']);
  }, 120_000);
});
