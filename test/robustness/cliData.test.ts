/**
 * Bad datasets through the real CLI (`factorgen tokenizer train`): every case is one stderr line after the backend line,
 * naming the file or folder and the cause, exit code 2; a run resumed on bad data leaves its checkpoint as it was.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadCheckpoint } from '@factorgen/io';
import { errorLines, makeImageFolder, makeTokenizer, pngClaiming, runCliProcess } from './fixtures';

let root: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-clidata-'));
  await initBackend('cpu');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Tiny model flags (8x8 grey, grid 4x4) so a run that gets past the data is cheap. */
const tiny = ['--sub-codebooks', '2', '--codebook-size', '16', '--code-dim', '4', '--base-channels', '8', '--channel-mult', '1,2',
  '--no-attention', '--latent-channels', '8', '--batch', '4', '--backend', 'wasm'];

/** `tokenizer train` on `args`; expects exactly the backend line and one error line. */
async function trainError(args: string[]): Promise<{ line: string; code: number | null }> {
  const r = await runCliProcess(['tokenizer', 'train', ...args, ...tiny]);
  expect(r.stderr.split('\n')[0]).toMatch(/^backend: /);
  const lines = errorLines(r.stderr);
  expect(lines, r.stderr).toHaveLength(1);
  return { line: lines[0], code: r.code };
}

/** root/<name>/{a,b}/ with two good 8x8 PNGs each, plus `extra` files written into class b. */
async function folderWith(name: string, extra: Record<string, Uint8Array>): Promise<string> {
  const dir = path.join(root, name);
  await makeImageFolder(dir, { a: 2, b: 2 });
  for (const [file, bytes] of Object.entries(extra)) fs.writeFileSync(path.join(dir, 'b', file), bytes);
  return dir;
}

const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

describe('ImageFolder through the CLI', () => {
  it('corrupt, truncated PNG and JPEG, empty folder, class without images, single class, pixel limit: one line each, exit 2', async () => {
    const noise = Buffer.from(Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 7919) % 256));
    const raw = { raw: { width: 32, height: 32, channels: 3 as const } };
    const jpg = await sharp(noise, raw).jpeg({ quality: 90 }).toBuffer();
    const png = await sharp(noise, raw).png().toBuffer();
    const corrupt = await folderWith('corrupt', { 'x.png': u8(Buffer.from('this is not a png')) });
    const truncPng = await folderWith('trunc-png', { 'x.png': u8(png.subarray(0, png.length >> 1)) });
    const truncJpg = await folderWith('trunc-jpg', { 'x.jpg': u8(jpg.subarray(0, jpg.length >> 1)) });
    const huge = await folderWith('huge', { 'x.png': u8(await pngClaiming(10_000, 10_000)) }); // 100 MP > the 50 MP limit
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    const noImages = path.join(root, 'no-images');
    await makeImageFolder(noImages, { a: 2 });
    fs.mkdirSync(path.join(noImages, 'b'));
    fs.writeFileSync(path.join(noImages, 'b', 'notes.txt'), 'no images here');
    const single = path.join(root, 'single');
    await makeImageFolder(single, { only: 3 });

    const cases: [string, string | RegExp][] = [
      [corrupt, `factorgen: --data ${corrupt}: b/x.png: corrupt or unreadable image (Input file contains unsupported image format)`],
      [truncPng, new RegExp(`^factorgen: --data ${truncPng}: b/x\\.png: corrupt or unreadable image \\(.+\\)$`)],
      // libvips' message is usually "VipsJpeg: premature end of JPEG image", but its error buffer is shared between
      // threads, so a concurrent decode of a good image can leave "Unknown error": the file and the cause are what count.
      [truncJpg, new RegExp(`^factorgen: --data ${truncJpg}: b/x\\.jpg: corrupt or unreadable image \\(.+\\)$`)],
      [huge, `factorgen: --data ${huge}: b/x.png: image too large (10000x10000 = 100000000 pixels, limit 50000000 pixels)`],
      [empty, `factorgen: --data ${empty}: no class folders (expected ${empty}/<class>/*.{png,jpg,jpeg,webp})`],
      [noImages, `factorgen: --data ${noImages}: b: class folder has no images (.png, .jpg, .jpeg, .webp)`],
      [single, `factorgen: --data ${single}: only one class folder (only); class-conditional training needs at least 2 classes`],
      [path.join(root, 'missing'), `factorgen: --data ${path.join(root, 'missing')}: no such folder (images are expected in ${path.join(root, 'missing', '<class>')}/*.png)`],
    ];
    const results = await Promise.all(
      cases.map(([dir], i) => trainError(['--dataset', 'folder', '--data', dir, '--size', '8', '--channels', '1', '--out', path.join(root, `run${i}`)])),
    );
    results.forEach((r, i) => {
      const want = cases[i][1];
      if (typeof want === 'string') expect(r.line).toBe(want);
      else expect(r.line).toMatch(want);
      expect(r.code).toBe(2);
      expect(fs.existsSync(path.join(root, `run${i}`))).toBe(false); // nothing was created
    });
  });

  it('images of other sizes and channel counts are converted (resized, centre-cropped, grey <-> RGB): training runs', async () => {
    const dir = path.join(root, 'mixed');
    fs.mkdirSync(path.join(dir, 'a'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'b'), { recursive: true });
    const img = (w: number, h: number, c: 1 | 3 | 4, v: number) => sharp(Buffer.alloc(w * h * c, v), { raw: { width: w, height: h, channels: c } });
    await img(12, 10, 3, 90).png().toFile(path.join(dir, 'a', 'rgb-12x10.png'));
    await img(5, 5, 1, 200).jpeg().toFile(path.join(dir, 'a', 'grey-5x5.jpg'));
    await img(30, 17, 4, 40).webp({ lossless: true }).toFile(path.join(dir, 'b', 'rgba-30x17.webp'));
    await img(8, 8, 1, 10).png().toFile(path.join(dir, 'b', 'grey-8x8.png'));
    const out = path.join(root, 'mixed-run');
    const r = await runCliProcess(['tokenizer', 'train', '--dataset', 'folder', '--data', dir, '--size', '8', '--channels', '1', '--steps', '1',
      '--out', out, ...tiny]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { steps: number }).steps).toBe(1);
    const ck = await loadCheckpoint(path.join(out, 'checkpoint'), 'tokenizer');
    expect([ck.step, (ck.config as { imageSize: number }).imageSize, (ck.config as { channels: number }).channels]).toEqual([1, 8, 1]);
  });

  it('resuming a run on a corrupt folder fails before touching its checkpoint', async () => {
    const run = path.join(root, 'good-run');
    const ckDir = await makeTokenizer(run, 'good', 2);
    const before = Object.fromEntries(fs.readdirSync(ckDir).map((f) => [f, fs.readFileSync(path.join(ckDir, f))]));
    const corrupt = await folderWith('corrupt-resume', { 'zz.png': u8(Buffer.from('garbage')) });
    const r = await trainError(['--resume', '--out', run, '--steps', '5', '--dataset', 'folder', '--data', corrupt, '--size', '8', '--channels', '1']);
    expect(r.line).toMatch(/zz\.png: corrupt or unreadable image/);
    expect(r.code).toBe(2);
    for (const [f, bytes] of Object.entries(before)) expect(fs.readFileSync(path.join(ckDir, f)).equals(bytes)).toBe(true);
    expect((await loadCheckpoint(ckDir, 'tokenizer')).step).toBe(2);
  });
});

/** An IDX file: big-endian magic, dims, then bytes. */
function idx(magic: number, dims: number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(body, 4 + 4 * dims.length);
  return out;
}

const gz = (bytes: Uint8Array) => u8(zlib.gzipSync(bytes));

/** A Fashion-MNIST folder whose train files are `images` and `labels` (already gzipped). */
function fashionDir(name: string, images: Uint8Array, labels: Uint8Array): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), images);
  fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), labels);
  return dir;
}

describe('Fashion-MNIST IDX through the CLI', () => {
  it('truncated IDX, truncated gzip, wrong magic numbers, missing files: one line each, exit 2', async () => {
    const pixels = new Uint8Array(4 * 28 * 28).fill(7);
    const labels = gz(idx(0x801, [4], Uint8Array.from([0, 1, 2, 3])));
    const goodImages = gz(idx(0x803, [4, 28, 28], pixels));
    const truncIdx = fashionDir('fm-trunc-idx', gz(idx(0x803, [4, 28, 28], pixels.subarray(0, 2 * 28 * 28))), labels);
    const truncGz = fashionDir('fm-trunc-gz', goodImages.subarray(0, goodImages.length - 12), labels);
    const magic = fashionDir('fm-magic', gz(idx(0x801, [4, 28, 28], pixels)), labels);
    const magicLabels = fashionDir('fm-magic-labels', goodImages, gz(idx(0x803, [4], Uint8Array.from([0, 1, 2, 3]))));
    const shortLabels = fashionDir('fm-short-labels', goodImages, gz(idx(0x801, [4], Uint8Array.from([0, 1]))));
    const none = path.join(root, 'fm-none');
    fs.mkdirSync(none);
    // Files inside --data are named after the flag: "--data DIR: train-images-idx3-ubyte.gz: <cause>".
    const img = (d: string) => `--data ${d}: train-images-idx3-ubyte.gz`;
    const lab = (d: string) => `--data ${d}: train-labels-idx1-ubyte.gz`;
    const cases: [string, string | RegExp][] = [
      [truncIdx, `factorgen: ${img(truncIdx)}: truncated (expected 3136 bytes of pixels, found 1568)`],
      [truncGz, new RegExp(`^factorgen: ${img(truncGz)}: not a valid gzip file \\(.+\\)$`)],
      [magic, `factorgen: ${img(magic)}: not an IDX images file (magic 0x00000801, expected 0x00000803)`],
      [magicLabels, `factorgen: ${lab(magicLabels)}: not an IDX labels file (magic 0x00000803, expected 0x00000801)`],
      [shortLabels, `factorgen: ${lab(shortLabels)}: truncated (expected 4 bytes of labels, found 2)`],
      [none, `factorgen: ${img(none)}: no such file (Fashion-MNIST IDX .gz files are expected here)`],
    ];
    const results = await Promise.all(
      cases.map(([dir], i) => trainError(['--dataset', 'fashion-mnist', '--data', dir, '--out', path.join(root, `fm-run${i}`)])),
    );
    results.forEach((r, i) => {
      const want = cases[i][1];
      if (typeof want === 'string') expect(r.line).toBe(want);
      else expect(r.line).toMatch(want);
      expect(r.code).toBe(2);
    });
  });
});
