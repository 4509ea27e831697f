/**
 * The use cases the CLI's tokenizer, eval and export commands call, through @factorgen/pipelines: their outputs
 * against the library functions they compose (encodeImages, decodeToImages, reconstructImages, psnrGlobal), and
 * their errors carrying the field they are about, in library words.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { readTokenFile } from '@factorgen/io';
import { decodeToImages, encodeImages, reconstructImages } from '@factorgen/tokenizer';
import { psnrGlobal } from '@factorgen/eval';
import {
  decodeTokenFile, encodeToTokenFile, exportModel, loadSplit, loadTokenizer, probeTokenizer, reconstructSplit, scoreReconstruction, type DataSource,
} from '@factorgen/pipelines';
import { makeImageFolder, makeTokenizer } from '../robustness/fixtures';
import { inCliWords } from '../support/cliWords';

let root: string;
let tokRun: string;
let tokDir: string;
let data: DataSource;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-usecases-'));
  await initBackend('cpu');
  tokRun = path.join(root, 'tok');
  tokDir = await makeTokenizer(tokRun);
  // 10 images per class: 9 train and 1 test each (every 10th image of a class is test).
  await makeImageFolder(path.join(root, 'images'), { a: 10, b: 10 });
  data = { dataset: 'folder', data: path.join(root, 'images'), size: 8, channels: 1 };
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** The UserError a promise rejects with. */
const rejection = (p: Promise<unknown>): Promise<UserError> =>
  p.then(
    () => { throw new Error('did not reject'); },
    (e: unknown) => { expect(e).toBeInstanceOf(UserError); return e as UserError; },
  );

describe('encode and decode', () => {
  it('encodeToTokenFile writes a class-balanced subset: the tokens encodeImages gives for those rows, in dataset order', async () => {
    const notes: string[] = [];
    const out = path.join(root, 'enc', 'a.tokens');
    const r = await encodeToTokenFile({ tokenizer: tokRun, out, data, split: 'train', limit: 4, batch: 3, note: (l) => notes.push(l) });
    expect(r).toMatchObject({ out, images: 4, grid: [4, 4], subCodebookSizes: [16, 16] });
    const set = readTokenFile(out);
    // 9 train images of a, then 9 of b: classes take turns, so rows 0, 1 (a) and 9, 10 (b).
    expect(Array.from(set.labels)).toEqual([0, 0, 1, 1]);
    // source is `${dataset name}/${split}`, and a folder dataset's name already ends in its split (as before the move).
    expect(set.header).toMatchObject({ count: 4, classNames: ['a', 'b'], tokenizerId: r.tokenizerId, source: `folder:images/train/train` });
    const train = await loadSplit(data, 'train');
    const per = 8 * 8;
    const rows = new Uint8Array(4 * per);
    [0, 1, 9, 10].forEach((row, i) => rows.set(train.images.subarray(row * per, (row + 1) * per), i * per));
    const { tok } = await loadTokenizer(tokDir);
    expect(Array.from(set.tokens)).toEqual(Array.from(await encodeImages(tok, rows, 4, 4)));
    tok.params.dispose();
    expect(notes).toEqual([`classes of ${data.data}: 0=a, 1=b`]);
  });

  it('decodeTokenFile writes what decodeToImages gives, one PNG per record in class folders', async () => {
    const tokens = path.join(root, 'enc', 'a.tokens');
    const out = path.join(root, 'dec');
    expect(await decodeTokenFile({ tokens, out, batch: 2 })).toEqual({ out, images: 4 });
    expect(fs.readdirSync(out).filter((f) => !f.startsWith('.')).sort()).toEqual(['0-a', '1-b']);
    expect(fs.readdirSync(path.join(out, '1-b')).sort()).toEqual(['0000.png', '0001.png']);
    const set = readTokenFile(tokens);
    const { tok } = await loadTokenizer(tokDir);
    const pixels = await decodeToImages(tok, set.tokens, 4, 4);
    tok.params.dispose();
    // Record 2 is the first of class b.
    const png = await sharp(path.join(out, '1-b', '0000.png')).extractChannel(0).raw().toBuffer();
    expect(Array.from(png)).toEqual(Array.from(pixels.subarray(2 * 64, 3 * 64)));
  });

  it('an existing token file is refused on field out, in words that name no flag', async () => {
    const out = path.join(root, 'enc', 'a.tokens');
    const e = await rejection(encodeToTokenFile({ tokenizer: tokRun, out, data, split: 'train', batch: 4 }));
    expect(e.field).toBe('out');
    expect(e.message).toBe(`\`out\` ${out}: already exists; pass \`overwrite\` to replace it`);
    expect(inCliWords(e)).toBe(`--out ${out}: already exists; pass --overwrite to replace it`);
  });

  it('a tokenizer of another image shape is refused on field dataset before any output is written', async () => {
    const out = path.join(root, 'rgb.tokens');
    const e = await rejection(encodeToTokenFile({ tokenizer: tokRun, out, data: { ...data, channels: 3 }, split: 'train', batch: 4 }));
    expect(e.field).toBe('dataset');
    expect(e.detail).toBe('images are 8x8x3, the tokenizer expects 8x8x1');
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('reconstruct, probe, eval recon', () => {
  it('reconstructSplit scores what reconstructImages gives and writes recon.png and metrics.json', async () => {
    const out = path.join(root, 'recon');
    const m = await reconstructSplit({ tokenizer: tokRun, data, split: 'test', limit: 100, grid: 2, out, batch: 4 });
    const test = await loadSplit(data, 'test');
    expect(test.n).toBe(2);
    const { tok } = await loadTokenizer(tokDir);
    const rec = await reconstructImages(tok, test.images, 2, 2);
    tok.params.dispose();
    expect(m).toMatchObject({ dataset: 'folder:images/test', split: 'test', images: 2, grid: path.join(out, 'recon.png') });
    expect(m.psnrGlobalMse).toBeCloseTo(psnrGlobal(test.images, rec), 10);
    expect(m.ssim).toBeNull(); // SSIM needs images of 11x11 or more
    expect(JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'))).toEqual(m);
    const meta = await sharp(path.join(out, 'recon.png')).metadata();
    expect(meta.format).toBe('png');
  });

  it('probeTokenizer fits one probe per sub-codebook and one on all, and draws a grid per sub-codebook', async () => {
    const out = path.join(root, 'probe');
    const r = await probeTokenizer({ tokenizer: tokRun, data, trainLimit: 18, limit: 2, steps: 3, rows: 1, cols: 1, out, batch: 8 });
    expect(Object.keys(r.probe)).toEqual(['k0', 'k1', 'all']);
    expect(r.probe.k0.dim).toBe(4);
    expect(r.probe.all.dim).toBe(8);
    expect(r).toMatchObject({ trainImages: 18, testImages: 2, chance: 0.5, grids: [path.join(out, 'grid-k0.png'), path.join(out, 'grid-k1.png')] });
    for (const p of Object.values(r.probe)) expect([0, 0.5, 1]).toContain(p.testAccuracy); // 2 test images
    expect(JSON.parse(fs.readFileSync(path.join(out, 'probe.json'), 'utf8'))).toEqual(r);
  });

  it('scoreReconstruction checks its out file before it loads anything', async () => {
    const file = path.join(root, 'taken.json');
    fs.writeFileSync(file, '{}');
    const e = await rejection(scoreReconstruction({ tokenizer: path.join(root, 'nosuch'), data, limit: 2, batch: 2, out: file }));
    expect(e.field).toBe('out');
    expect(inCliWords(e)).toBe(`--out ${file}: already exists; pass --overwrite to replace it`);
  });
});

describe('export', () => {
  it('copies a run without its training state; the copy is refused over its source on field to', async () => {
    const to = path.join(root, 'exported');
    const r = await exportModel({ from: tokRun, to, format: 'safetensors' });
    expect(r.to).toBe(to);
    expect(r.bytes).toBeGreaterThan(0);
    expect(r.bytes).toBeLessThan(r.sourceBytes); // no discriminator, usage window or alignment heads
    const [copy, source] = [await loadTokenizer(to), await loadTokenizer(tokDir)];
    expect(copy.id).toBe(source.id);
    copy.tok.params.dispose();
    source.tok.params.dispose();
    const e = await rejection(exportModel({ from: tokRun, to: tokDir, format: 'safetensors' }));
    expect(e.field).toBe('to');
    expect(e.message).toBe(`\`to\` ${tokDir}: is the checkpoint being exported (\`from\` ${tokRun}); choose another folder`);
    expect(inCliWords(e)).toBe(`--to ${tokDir}: is the checkpoint being exported (--from ${tokRun}); choose another folder`);
    const again = await rejection(exportModel({ from: tokRun, to, format: 'safetensors' }));
    expect(inCliWords(again)).toBe(`--to ${to}: already holds a checkpoint; pass --overwrite to replace it or choose another folder`);
  });
});
