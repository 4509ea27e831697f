/**
 * `factorgen export` of a tokenizer writes only what encoding and decoding read (no discriminator, code-usage window
 * or alignment heads), keeps the id that token files and generators recorded, loads everywhere a checkpoint does with
 * the same tokens and pixels, and is refused (one line) as a run to resume. The source is a tiny tokenizer trained here
 * with every kind of training-only tensor (PatchGAN loss, an alignment target, EMA), so the test does not depend on
 * what pretrained/ holds; the shipped tokenizer is exported too, for its size and the id its generator recorded.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadCheckpoint } from '@factorgen/io';
import { ParamStore, Rng } from '@factorgen/nn';
import { type LoadedCheckpoint } from '@factorgen/formats';
import { inferenceTensors, isTrainingOnlyTensor, tokenizerFromCheckpoint, tokenizerIdOf } from '@factorgen/tokenizer';
import { createTeacher, freezeParams, teacherFromStore, type TeacherConfig } from '@factorgen/tokenizer';
import { trainTokenizer } from '@factorgen/pipelines';
import { loadTokenizer } from '@factorgen/pipelines';
import { reconstructImages } from '@factorgen/tokenizer';
import { readTokenFile } from '@factorgen/io';
import {
  expectOneLine, makeGenerator, makeImageFolder, makeTokenFile, repoRoot, runCliProcess, tinyDataset, tinyTokenizerConfig, tinyTokenizerTrain, type CliResult,
} from '../robustness/fixtures';

const shipped = path.join(repoRoot, 'pretrained/tokenizer');
let root: string;
let src: string; // the tiny tokenizer's checkpoint folder
let exp: string; // its export
let exported: CliResult;
let genRun: string; // a tiny generator trained on src's tokens
let images: string; // an 8x8 image folder
const R = (name: string) => path.join(root, name);
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-export-'));
  await initBackend('cpu');
  const tcfg: TeacherConfig = { imageSize: 8, channels: 1, widths: [4, 8], embedDim: 6, classes: 3, normGroups: 2 };
  const tstore = new ParamStore(new Rng('teacher'));
  createTeacher(tstore, tcfg);
  freezeParams(tstore);
  const config = tinyTokenizerConfig({
    adversarial: { weight: 0.5, startStep: 0, baseChannels: 8, layers: 1 },
    alignTargets: [{ subCodebook: 1, teacher: 0, teacherDim: 6, weight: 0.5, layers: 1, heads: 2 }],
  });
  await trainTokenizer({
    out: R('src'), resume: false, config, data: tinyDataset(), teachers: [teacherFromStore(tstore, tcfg)], train: tinyTokenizerTrain({ steps: 2, ema: 0.9 }),
  });
  tstore.dispose();
  src = R('src/checkpoint');
  await makeTokenFile(src, R('src.tokens'));
  genRun = R('gen');
  await makeGenerator(genRun, readTokenFile(R('src.tokens')), R('src.tokens'));
  images = R('images');
  await makeImageFolder(images, { a: 10, b: 10 }); // every 10th image of a class is test
  exp = R('exp');
  exported = await runCliProcess(['export', '--from', R('src'), '--to', exp]);
  expect(exported.code, exported.stderr).toBe(0);
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Every file under `dir` (recursively) by its path relative to `dir`, with its bytes. */
function filesUnder(dir: string): Map<string, Buffer> {
  const names = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((n) => fs.statSync(path.join(dir, n)).isFile());
  return new Map(names.sort().map((n) => [n, fs.readFileSync(path.join(dir, n))]));
}
const prefixes = (c: LoadedCheckpoint) => [...new Set([...c.tensors.keys()].map((n) => n.split('/')[0]))].sort();
const bytesOf = (t: { data: Float32Array | Int32Array }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe('export of a tokenizer', () => {
  it('holds only the inference tensors (the EMA weights) and keeps the id its token files recorded', async () => {
    const s = await loadCheckpoint(src, 'tokenizer');
    const ck = await loadCheckpoint(exp, 'tokenizer');
    expect(prefixes(s)).toEqual(['align', 'decoder', 'disc', 'ema', 'encoder', 'quant', 'state']);
    expect(prefixes(ck)).toEqual(['decoder', 'encoder', 'quant']);
    expect([...ck.tensors.keys()].filter(isTrainingOnlyTensor)).toEqual([]);
    const inference = inferenceTensors(s.tensors);
    expect([...ck.tensors.keys()].sort()).toEqual([...inference.keys()].sort());
    for (const [name, t] of ck.tensors) expect(bytesOf(t).equals(bytesOf(inference.get(name)!)), name).toBe(true);
    expect(bytesOf(ck.tensors.get('decoder/conv_out/w')!).equals(bytesOf(s.tensors.get('ema/decoder/conv_out/w')!))).toBe(true);
    expect(ck.config).toEqual(s.config);
    expect(ck.optimizer).toBeUndefined();
    const written = JSON.parse(exported.stdout) as { format: string; bytes: number; sourceBytes: number };
    expect(written.format).toBe('safetensors');
    expect(fs.readdirSync(exp).sort()).toEqual(['config.json', 'model.safetensors']);
    // bytes: the tensors' data, i.e. model.safetensors less its 8-byte length and its header
    const dataBytes = (file: string) => fs.statSync(file).size - 8 - fs.readFileSync(file).readUInt32LE(0);
    expect(written.bytes).toBe(dataBytes(path.join(exp, 'model.safetensors')));
    expect(written.sourceBytes).toBe(dataBytes(path.join(src, 'model.safetensors')));
    expect(written.bytes).toBeLessThan(written.sourceBytes / 2);

    const recorded = readTokenFile(R('src.tokens')).header.tokenizerId;
    expect(tokenizerIdOf(s)).toBe(recorded);
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
    expect(fs.readFileSync(R('again/model.safetensors')).equals(fs.readFileSync(path.join(exp, 'model.safetensors')))).toBe(true);
    // --format factorgen writes the legacy folder (config.json with the index, weights.bin) with the same tensors and
    // id; exporting that back to safetensors gives the same bytes as the first export
    const legacy = await runCliProcess(['export', '--from', exp, '--to', R('legacy'), '--format', 'factorgen']);
    expect(legacy.code, legacy.stderr).toBe(0);
    expect(fs.readdirSync(R('legacy')).sort()).toEqual(['config.json', 'weights.bin']);
    const lck = await loadCheckpoint(R('legacy'), 'tokenizer');
    expect(lck.format).toBe(1);
    expect(tokenizerIdOf(lck)).toBe(recorded);
    for (const [name, t] of ck.tensors) expect(bytesOf(lck.tensors.get(name)!).equals(bytesOf(t)), name).toBe(true);
    expect((JSON.parse(legacy.stdout) as { bytes: number }).bytes).toBe(fs.statSync(R('legacy/weights.bin')).size);
    const back = await runCliProcess(['export', '--from', R('legacy'), '--to', R('back')]);
    expect(back.code, back.stderr).toBe(0);
    expect(fs.readFileSync(R('back/model.safetensors')).equals(fs.readFileSync(path.join(exp, 'model.safetensors')))).toBe(true);
    expect(fs.readFileSync(R('back/config.json')).equals(fs.readFileSync(path.join(exp, 'config.json')))).toBe(true);
    // an export changed afterwards no longer claims the id: one weight off by one ulp gives another id
    const w = ck.tensors.get('decoder/conv_out/b')!.data as Float32Array;
    new Int32Array(w.buffer, w.byteOffset, w.length)[0] += 1;
    expect(tokenizerIdOf(ck)).not.toBe(recorded);
  }, 120_000);

  it('of the shipped tokenizer: 4,137,028 bytes of weights (1,034,257 float32 parameters), under the id the shipped generator recorded', async () => {
    const r = await runCliProcess(['export', '--from', shipped, '--to', R('shipped')]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { bytes: number }).bytes).toBe(4_137_028);
    const ck = await loadCheckpoint(R('shipped'), 'tokenizer');
    expect(prefixes(ck)).toEqual(['decoder', 'encoder', 'quant']);
    const gen = await loadCheckpoint(path.join(repoRoot, 'pretrained/generator'), 'generator');
    expect(tokenizerIdOf(ck)).toBe((gen.extra as { tokenizerId: string }).tokenizerId);
  }, 120_000);

  it('encodes, reconstructs, decodes and samples to the same tokens and pixels as the checkpoint it came from', async () => {
    // reconstruct in process (`tokenizer reconstruct` scores SSIM, whose 11x11 window does not fit 8x8 images)
    const data = tinyDataset();
    const reconOf = async (dir: string) => {
      const t = await loadTokenizer(dir);
      const rec = await reconstructImages(t.tok, data.images, data.n, 5);
      t.tok.params.dispose();
      return Buffer.from(rec);
    };
    expect((await reconOf(exp)).equals(await reconOf(src))).toBe(true);
    const folder = ['--dataset', 'folder', '--data', images, '--size', '8', '--channels', '1', '--backend', 'wasm'];
    const encode = (tok: string, out: string) => ['tokenizer', 'encode', '--tokenizer', tok, '--out', R(out), ...folder];
    const results = await Promise.all([runCliProcess(encode(src, 'ck.tokens')), runCliProcess(encode(exp, 'exp.tokens'))]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const [a, b] = [readTokenFile(R('ck.tokens')), readTokenFile(R('exp.tokens'))];
    expect(b.header.tokenizerId).toBe(a.header.tokenizerId);
    expect(b.header.count).toBe(18);
    expect(b.tokens).toEqual(a.tokens);

    // the checkpoint's token file decoded with the export, and with the tokenizer its header names; the generator
    // trained on the checkpoint's tokens sampled through the export, and through the tokenizer it records
    const sample = (out: string, ...tok: string[]) => ['sample', '--generator', genRun, ...tok, '--per-class', '1', '--seed', '7', '--out', R(out), '--backend', 'wasm'];
    const decoded = await Promise.all([
      runCliProcess(['tokenizer', 'decode', '--tokens', R('ck.tokens'), '--out', R('d-ck'), '--backend', 'wasm']),
      runCliProcess(['tokenizer', 'decode', '--tokens', R('ck.tokens'), '--tokenizer', exp, '--out', R('d-exp'), '--backend', 'wasm']),
      runCliProcess(sample('s-ck')),
      runCliProcess(sample('s-exp', '--tokenizer', exp)),
    ]);
    for (const r of decoded) expect(r.code, r.stderr).toBe(0);
    for (const [ck, ex, pngs] of [['d-ck', 'd-exp', 18], ['s-ck', 's-exp', 4]] as const) {
      const [fck, fexp] = [filesUnder(R(ck)), filesUnder(R(ex))];
      const names = [...fexp.keys()].filter((n) => n.endsWith('.png'));
      expect(names).toHaveLength(pngs); // decode: 18 images; sample: 3 classes x 1 and grid.png
      expect([...fexp.keys()]).toEqual([...fck.keys()]);
      for (const name of names) expect(fexp.get(name)!.equals(fck.get(name)!), name).toBe(true);
    }
  }, 300_000);

  it('is refused as a run to resume, in one line', async () => {
    fs.cpSync(R('shipped'), R('run/checkpoint'), { recursive: true });
    const r = await runCliProcess(['tokenizer', 'train', '--resume', '--out', R('run'), '--steps', '5100', '--backend', 'wasm']);
    expectOneLine(r, 2, `factorgen: --resume: ${R('run/checkpoint')} holds an exported tokenizer (no optimizer state, discriminator, code-usage window or alignment heads); only the run's own checkpoint resumes`);
  }, 120_000);
});
