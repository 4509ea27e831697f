/**
 * `factorgen export` of a tokenizer writes only what encoding and decoding read (no discriminator, code-usage window
 * or alignment heads), keeps the id that token files and generators recorded, loads everywhere a checkpoint does with
 * the same pixels, and is refused (one line) as a run to resume. Made from the shipped pretrained/tokenizer, which
 * has all three kinds of training-only tensors.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, type LoadedCheckpoint } from '../../packages/shared/src';
import { inferenceTensors, isTrainingOnlyTensor, tokenizerFromCheckpoint, tokenizerIdOf } from '../../packages/tokenizer/src/restore';
import { readTokenFile } from '../../packages/tokenizer/src/tokenFile';
import { expectOneLine, repoRoot, runCliProcess, type CliResult } from '../robustness/fixtures';

const shipped = path.join(repoRoot, 'pretrained/tokenizer');
let root: string;
let exp: string;
let exported: CliResult;
const R = (name: string) => path.join(root, name);
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-export-'));
  exp = R('tok');
  exported = await runCliProcess(['export', '--from', shipped, '--to', exp]);
  expect(exported.code, exported.stderr).toBe(0);
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Every file under `dir` (recursively) by its path relative to `dir`, with its bytes. */
function filesUnder(dir: string): Map<string, Buffer> {
  const names = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((n) => fs.statSync(path.join(dir, n)).isFile());
  return new Map(names.sort().map((n) => [n, fs.readFileSync(path.join(dir, n))]));
}

describe('export of a tokenizer', () => {
  it('holds only the inference tensors (about half the bytes) and keeps the id the shipped generator recorded', async () => {
    const src = await loadCheckpoint(shipped, 'tokenizer');
    const ck = await loadCheckpoint(exp, 'tokenizer');
    const prefixes = (c: LoadedCheckpoint) => [...new Set([...c.tensors.keys()].map((n) => n.split('/')[0]))].sort();
    expect(prefixes(src)).toEqual(['align', 'decoder', 'disc', 'encoder', 'quant', 'state']);
    expect(prefixes(ck)).toEqual(['decoder', 'encoder', 'quant']);
    expect([...ck.tensors.keys()].filter(isTrainingOnlyTensor)).toEqual([]);
    expect([...ck.tensors.keys()].sort()).toEqual([...inferenceTensors(src.tensors).keys()].sort());
    const bytesOf = (t: { data: Float32Array | Int32Array }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    for (const [name, t] of ck.tensors) expect(bytesOf(t).equals(bytesOf(src.tensors.get(name)!)), name).toBe(true);
    expect(ck.config).toEqual(src.config);
    expect(ck.optimizer).toBeUndefined();
    expect(JSON.parse(exported.stdout)).toEqual({ to: exp, bytes: 2_355_364, sourceBytes: 4_639_728 });
    expect(fs.statSync(path.join(exp, 'weights.bin')).size).toBe(2_355_364);
    expect(fs.statSync(path.join(shipped, 'weights.bin')).size).toBe(4_639_728);

    const gen = await loadCheckpoint(path.join(repoRoot, 'pretrained/generator'), 'generator');
    const recorded = (gen.extra as { tokenizerId: string }).tokenizerId;
    expect(tokenizerIdOf(src)).toBe(recorded);
    expect(tokenizerIdOf(ck)).toBe(recorded);
    // what `sample`, `web build` and the page compare: the id of the loaded export
    const { tok, id } = tokenizerFromCheckpoint(ck, exp);
    expect(id).toBe(recorded);
    expect([...tok.params.vars.keys()].sort()).toEqual([...ck.tensors.keys()].sort());
    tok.params.dispose();
    // an export of the export is the same model with the same id
    const again = await runCliProcess(['export', '--from', exp, '--to', R('again')]);
    expect(again.code, again.stderr).toBe(0);
    expect(tokenizerIdOf(await loadCheckpoint(R('again'), 'tokenizer'))).toBe(recorded);
    // an export changed afterwards no longer claims the id: one weight off by one ulp gives another id
    const w = ck.tensors.get('decoder/conv_out/b')!.data as Float32Array;
    const bits = new Int32Array(w.buffer, w.byteOffset, w.length);
    bits[0] += 1;
    expect(tokenizerIdOf(ck)).not.toBe(recorded);
  }, 120_000);

  it('encodes, reconstructs, decodes and samples to the same tokens and pixels as the checkpoint it came from', async () => {
    const wasm = ['--backend', 'wasm'];
    const recon = (tok: string, out: string) => ['tokenizer', 'reconstruct', '--tokenizer', tok, '--limit', '16', '--out', R(out), ...wasm];
    const encode = (tok: string, out: string) => ['tokenizer', 'encode', '--tokenizer', tok, '--split', 'test', '--limit', '8', '--out', R(out), ...wasm];
    const results = await Promise.all([
      runCliProcess(recon(shipped, 'r-ck')),
      runCliProcess(recon(exp, 'r-exp')),
      runCliProcess(encode(shipped, 'ck.tokens')),
      runCliProcess(encode(exp, 'exp.tokens')),
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const metrics = (out: string) => {
      const m = JSON.parse(fs.readFileSync(R(`${out}/metrics.json`), 'utf8')) as Record<string, unknown>;
      return { ...m, tokenizer: undefined, imagesPerSecond: undefined, grid: undefined };
    };
    expect(metrics('r-exp')).toEqual(metrics('r-ck'));
    expect(fs.readFileSync(R('r-exp/recon.png')).equals(fs.readFileSync(R('r-ck/recon.png')))).toBe(true);
    const [a, b] = [readTokenFile(R('ck.tokens')), readTokenFile(R('exp.tokens'))];
    expect(b.header.tokenizerId).toBe(a.header.tokenizerId);
    expect(b.tokens).toEqual(a.tokens);

    // the checkpoint's token file decoded with the export, and with the tokenizer its header names
    const decoded = await Promise.all([
      runCliProcess(['tokenizer', 'decode', '--tokens', R('ck.tokens'), '--out', R('d-ck'), ...wasm]),
      runCliProcess(['tokenizer', 'decode', '--tokens', R('ck.tokens'), '--tokenizer', exp, '--out', R('d-exp'), ...wasm]),
    ]);
    for (const r of decoded) expect(r.code, r.stderr).toBe(0);
    const [dck, dexp] = [filesUnder(R('d-ck')), filesUnder(R('d-exp'))];
    expect([...dexp.keys()].filter((n) => n.endsWith('.png'))).toHaveLength(8);
    expect([...dexp.keys()]).toEqual([...dck.keys()]);
    for (const [name, bytes] of dexp) expect(bytes.equals(dck.get(name)!), name).toBe(true);

    // the shipped generator samples through the export as through the checkpoint it records
    const sample = (out: string, ...tok: string[]) =>
      ['sample', '--generator', path.join(repoRoot, 'pretrained/generator'), ...tok, '--classes', '3', '--per-class', '1', '--seed', '7', '--out', R(out), ...wasm];
    const sampled = await Promise.all([runCliProcess(sample('s-ck')), runCliProcess(sample('s-exp', '--tokenizer', exp))]);
    for (const r of sampled) expect(r.code, r.stderr).toBe(0);
    const [sck, sexp] = [filesUnder(R('s-ck')), filesUnder(R('s-exp'))];
    const pngs = [...sexp.keys()].filter((n) => n.endsWith('.png'));
    expect(pngs).toHaveLength(2); // the sample and grid.png
    expect([...sexp.keys()]).toEqual([...sck.keys()]);
    for (const name of pngs) expect(sexp.get(name)!.equals(sck.get(name)!), name).toBe(true);
  }, 300_000);

  it('is refused as a run to resume, in one line', async () => {
    fs.cpSync(exp, R('run/checkpoint'), { recursive: true });
    const r = await runCliProcess(['tokenizer', 'train', '--resume', '--out', R('run'), '--steps', '2900', '--backend', 'wasm']);
    expectOneLine(r, 2, `factorgen: --resume: ${R('run/checkpoint')} holds an exported tokenizer (no optimizer state, discriminator, code-usage window or alignment heads); only the run's own checkpoint resumes`);
  }, 120_000);
});
