import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { Rng } from '@factorgen/nn';
import { batchIndices, firstPerClass, flipMask, gatherImages, gatherLabels, subset, convertChannels, resizeCover, slugify, type ImageDataset } from '@factorgen/formats';
import { convertDataset, loadDataset, repoRoot, fashionMnistClassNames, fashionMnistClassSlugs, loadFashionMnist, parseIdxImages, loadEmoji, loadImageFolder } from '@factorgen/io';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-data-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A Buffer as a plain Uint8Array (@types/node's Buffer does not type-check as one under TS 5.9). */
const u8 = (b: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) => new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);

/** An IDX file: big-endian magic, dims, then bytes. */
function idx(magic: number, dims: number[], body: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(body, 4 + 4 * dims.length);
  return out;
}

function fmDir(name: string, images: Uint8Array, labels: Uint8Array, gzip = true): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzip ? u8(zlib.gzipSync(images)) : images);
  fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), u8(zlib.gzipSync(labels)));
  return dir;
}

const errorOf = async (f: () => unknown): Promise<Error> => {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

describe('Fashion-MNIST IDX', () => {
  it('parses a hand-made gzipped IDX pair', () => {
    const pixels = Array.from({ length: 2 * 2 * 3 }, (_, i) => i * 20);
    const dir = fmDir('ok', idx(0x803, [2, 2, 3], pixels), idx(0x801, [2], [3, 9]));
    const ds = loadFashionMnist(dir, 'train');
    expect([ds.n, ds.height, ds.width, ds.channels]).toEqual([2, 2, 3, 1]);
    expect([...ds.images]).toEqual(pixels);
    expect([...ds.labels]).toEqual([3, 9]);
    expect(ds.classNames[9]).toBe('ankle boot');
  });

  it('rejects a wrong magic number with the exact message', () => {
    const dir = fmDir('magic', idx(0x801, [1, 1, 1], [0]), idx(0x801, [1], [0]));
    const file = path.join(dir, 'train-images-idx3-ubyte.gz');
    expect(() => loadFashionMnist(dir, 'train')).toThrow(new UserError(`${file}: not an IDX images file (magic 0x00000801, expected 0x00000803)`));
  });

  it('rejects truncated pixels and labels with the exact message', () => {
    let dir = fmDir('trunc', idx(0x803, [2, 2, 3], Array(10).fill(1)), idx(0x801, [2], [0, 1]));
    const file = path.join(dir, 'train-images-idx3-ubyte.gz');
    expect(() => loadFashionMnist(dir, 'train')).toThrow(new UserError(`${file}: truncated (expected 12 bytes of pixels, found 10)`));
    expect(() => parseIdxImages(new Uint8Array([0, 0, 8, 3, 0]), 'x.idx')).toThrow('x.idx: truncated (expected a 16-byte IDX header, found 5 bytes)');
    dir = fmDir('trunclabels', idx(0x803, [2, 1, 1], [1, 2]), idx(0x801, [2], [0]));
    expect(() => loadFashionMnist(dir, 'train')).toThrow(`${path.join(dir, 'train-labels-idx1-ubyte.gz')}: truncated (expected 2 bytes of labels, found 1)`);
  });

  it('names the file on gzip errors, missing files, count mismatches and bad labels', () => {
    let dir = fmDir('nogz', idx(0x803, [1, 1, 1], [0]), idx(0x801, [1], [0]), false);
    const images = path.join(dir, 'train-images-idx3-ubyte.gz');
    const e1 = (() => { try { loadFashionMnist(dir, 'train'); } catch (e) { return e as Error; } })();
    expect(e1).toBeInstanceOf(UserError);
    expect(e1?.message).toMatch(new RegExp(`^${images.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a valid gzip file \\(.+\\)$`));
    expect(() => loadFashionMnist(dir, 'test')).toThrow(`${path.join(dir, 't10k-images-idx3-ubyte.gz')}: no such file (Fashion-MNIST IDX .gz files are expected here)`);
    dir = fmDir('count', idx(0x803, [2, 1, 1], [1, 2]), idx(0x801, [3], [0, 1, 2]));
    expect(() => loadFashionMnist(dir, 'train')).toThrow(
      `${path.join(dir, 'train-labels-idx1-ubyte.gz')}: 3 labels but ${path.join(dir, 'train-images-idx3-ubyte.gz')} has 2 images`,
    );
    dir = fmDir('range', idx(0x803, [1, 1, 1], [1]), idx(0x801, [1], [10]));
    expect(() => loadFashionMnist(dir, 'train')).toThrow('label 10 at index 0 is out of range 0..9');
  });

  it('loads the committed Fashion-MNIST: 60000 / 10000 images of 28x28x1, balanced labels 0..9', async () => {
    const train = await loadDataset({ name: 'fashion-mnist', split: 'train' });
    expect([train.n, train.height, train.width, train.channels, train.images.length]).toEqual([60000, 28, 28, 1, 60000 * 784]);
    const counts = new Array(10).fill(0);
    for (const l of train.labels) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(6000));
    let sum = 0;
    for (const v of train.images) sum += v;
    expect(sum / train.images.length).toBeCloseTo(72.94, 1); // the well-known mean 0.2860 * 255
    const test = loadFashionMnist(path.join(repoRoot(), 'data', 'fashion-mnist'), 'test');
    expect([test.n, test.height, test.width, test.channels]).toEqual([10000, 28, 28, 1]);
    expect(Math.min(...test.labels)).toBe(0);
    expect(Math.max(...test.labels)).toBe(9);
  });

  it('has class names and folder slugs', () => {
    expect(fashionMnistClassNames).toHaveLength(10);
    expect(fashionMnistClassSlugs[0]).toBe('t-shirt-top');
    expect(fashionMnistClassSlugs[9]).toBe('ankle-boot');
    expect(slugify('Travel & Places')).toBe('travel-places');
  });
});

describe('emoji', () => {
  it('loads 32x32 RGB images in >= 5 classes with disjoint, class-covering splits', () => {
    const dir = path.join(repoRoot(), 'data', 'emoji');
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'emoji32.json'), 'utf8')) as { count: number };
    const train = loadEmoji(dir, 'train');
    const test = loadEmoji(dir, 'test');
    expect([train.height, train.width, train.channels]).toEqual([32, 32, 3]);
    expect(train.classNames.length).toBeGreaterThanOrEqual(5);
    expect(train.classNames).not.toContain('Component');
    expect(train.n + test.n).toBe(meta.count);
    expect(test.n).toBeGreaterThan(meta.count / 11);
    expect(test.n).toBeLessThan(meta.count / 9);
    for (const ds of [train, test]) expect(new Set(ds.labels).size).toBe(ds.classNames.length);
    // Alpha was composited on white: most top-left pixels are white, and images are not blank.
    let whiteCorners = 0;
    let sum = 0;
    for (let i = 0; i < train.n; i++) {
      const o = i * 32 * 32 * 3;
      if (train.images[o] === 255 && train.images[o + 1] === 255 && train.images[o + 2] === 255) whiteCorners++;
    }
    for (const v of train.images) sum += v;
    expect(whiteCorners / train.n).toBeGreaterThan(0.8);
    expect(sum / train.images.length).toBeLessThan(230);
  });

  it('converts size and channels on request', async () => {
    const ds = await loadDataset({ name: 'emoji', split: 'test', size: 16, channels: 1 });
    expect([ds.height, ds.width, ds.channels, ds.images.length]).toEqual([16, 16, 1, ds.n * 256]);
    expect(ds.images[0]).toBe(255); // white background stays white
  });
});

describe('pixel conversion', () => {
  it('resizes the cover way with a linear filter (hand-computed values)', () => {
    // upsampling 2 -> 4 along x (half-pixel centres): [a, .75a+.25b, .25a+.75b, b]
    expect([...resizeCover(Uint8Array.from([0, 100, 0, 100]), 2, 2, 1, 4).subarray(0, 4)]).toEqual([0, 25, 75, 100]);
    // 2 rows x 4 columns -> 2x2: scale 1, the centre two columns are kept as they are
    expect([...resizeCover(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2, 4, 1, 2)]).toEqual([2, 3, 6, 7]);
    // downsampling 4 -> 2 uses a triangle of radius 2: weights [1,3,3,1]/8 over [0(clamped),0,10,20]
    const row = Uint8Array.from([0, 10, 20, 30]);
    const square = new Uint8Array(16);
    for (let y = 0; y < 4; y++) square.set(row, y * 4);
    expect([...resizeCover(square, 4, 4, 1, 2)]).toEqual([6, 24, 6, 24]);
  });

  it('converts grey <-> RGB (Rec.601 luma)', () => {
    expect([...convertChannels(Uint8Array.from([255, 0, 0, 10, 20, 30]), 3, 1)]).toEqual([76, 18]);
    expect([...convertChannels(Uint8Array.from([7, 9]), 1, 3)]).toEqual([7, 7, 7, 9, 9, 9]);
    const ds: ImageDataset = { name: 't', images: Uint8Array.from([0, 100, 0, 100]), n: 1, height: 2, width: 2, channels: 1, labels: Int32Array.from([0]), classNames: ['a', 'b'] };
    const big = convertDataset(ds, 4, 3);
    expect([big.height, big.width, big.channels, ...big.images.subarray(0, 6)]).toEqual([4, 4, 3, 0, 0, 0, 25, 25, 25]);
    expect(convertDataset(ds, 2, 1)).toBe(ds);
  });
});

describe('ImageFolder', () => {
  const solid = (w: number, h: number, c: 1 | 3 | 4, value: number[]) => {
    const buf = Buffer.alloc(w * h * c);
    for (let i = 0; i < w * h; i++) for (let k = 0; k < c; k++) buf[i * c + k] = value[k];
    return sharp(buf, { raw: { width: w, height: h, channels: c } });
  };

  it('converts other sizes and channel counts; classes are sorted folder names', async () => {
    const root = path.join(tmp, 'folder-ok');
    fs.mkdirSync(path.join(root, 'dog'), { recursive: true });
    fs.mkdirSync(path.join(root, 'cat'), { recursive: true });
    fs.mkdirSync(path.join(root, '.hidden'), { recursive: true });
    // cat/a.png: 40x20, left half red, right half blue -> cover-cropped centre 20x20 -> 8x8 half red, half blue.
    const wide = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) wide.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    await sharp(wide, { raw: { width: 40, height: 20, channels: 3 } }).png().toFile(path.join(root, 'cat', 'a.png'));
    await solid(10, 10, 1, [100]).toColourspace('b-w').png().toFile(path.join(root, 'dog', 'grey.png'));
    await solid(12, 12, 4, [0, 255, 0, 0]).png().toFile(path.join(root, 'dog', 'clear.PNG')); // fully transparent -> white
    await solid(9, 9, 3, [0, 200, 0]).jpeg({ quality: 100 }).toFile(path.join(root, 'dog', 'j.jpg'));
    await solid(9, 9, 3, [0, 0, 200]).webp({ lossless: true }).toFile(path.join(root, 'dog', 'w.webp'));
    fs.writeFileSync(path.join(root, 'dog', 'notes.txt'), 'not an image');

    const ds = await loadImageFolder(root, { size: 8, channels: 3 });
    expect(ds.classNames).toEqual(['cat', 'dog']);
    expect([ds.n, ds.height, ds.width, ds.channels]).toEqual([5, 8, 8, 3]);
    expect([...ds.labels]).toEqual([0, 1, 1, 1, 1]); // dog: clear.PNG, grey.png, j.jpg, w.webp
    const px = (i: number, y: number, x: number) => [...ds.images.subarray(((i * 8 + y) * 8 + x) * 3, ((i * 8 + y) * 8 + x) * 3 + 3)];
    expect(px(0, 3, 0)).toEqual([255, 0, 0]);
    expect(px(0, 3, 7)).toEqual([0, 0, 255]);
    expect(px(1, 4, 4)).toEqual([255, 255, 255]);
    expect(px(2, 4, 4)).toEqual([100, 100, 100]);
    for (const [k, v] of px(3, 4, 4).entries()) expect(Math.abs(v - [0, 200, 0][k])).toBeLessThanOrEqual(3);
    expect(px(4, 4, 4)).toEqual([0, 0, 200]);

    const grey = await loadImageFolder(root, { size: 4, channels: 1 });
    expect([grey.channels, grey.images.length]).toEqual([1, 5 * 16]);
    expect(grey.images[2 * 16 + 5]).toBe(100);
    expect(grey.images[1 * 16]).toBe(255);
  });

  it('splits every 10th image of each class (by sorted name) into test', async () => {
    const root = path.join(tmp, 'folder-split');
    for (const [cls, count] of [['a', 12], ['b', 10]] as const) {
      fs.mkdirSync(path.join(root, cls), { recursive: true });
      for (let i = 0; i < count; i++) await solid(4, 4, 1, [i * 10]).toColourspace('b-w').png().toFile(path.join(root, cls, `${String(i).padStart(2, '0')}.png`));
    }
    const test = await loadDataset({ name: 'folder', dir: root, split: 'test', size: 4, channels: 1 });
    expect([test.n, ...test.labels]).toEqual([2, 0, 1]);
    expect([test.images[0], test.images[16]]).toEqual([90, 90]);
    const train = await loadDataset({ name: 'folder', dir: root, split: 'train', size: 4, channels: 1 });
    expect(train.n).toBe(20);
    expect(train.images[9 * 16]).toBe(100); // a/10.png follows a/08.png
  });

  it('gives one-line errors naming the path and the cause', async () => {
    const mk = (...p: string[]) => {
      const d = path.join(tmp, ...p);
      fs.mkdirSync(d, { recursive: true });
      return d;
    };
    const missing = path.join(tmp, 'no-such-folder');
    expect((await errorOf(() => loadImageFolder(missing, { size: 8, channels: 3 }))).message).toBe(`${missing}: no such folder (images are expected in ${missing}/<class>/*.png)`);

    const empty = mk('folder-empty');
    const eEmpty = await errorOf(() => loadImageFolder(empty, { size: 8, channels: 3 }));
    expect(eEmpty).toBeInstanceOf(UserError);
    expect(eEmpty.message).toMatch(/: no class folders \(expected /);

    const noImages = mk('folder-noimg', 'x');
    mk('folder-noimg', 'y');
    fs.writeFileSync(path.join(noImages, 'readme.txt'), 'hi');
    await solid(4, 4, 3, [1, 2, 3]).png().toFile(path.join(tmp, 'folder-noimg', 'y', 'a.png'));
    expect((await errorOf(() => loadImageFolder(path.join(tmp, 'folder-noimg'), { size: 8, channels: 3 }))).message).toBe(
      `${noImages}: class folder has no images (.png, .jpg, .jpeg, .webp)`,
    );

    const single = mk('folder-single', 'only');
    await solid(4, 4, 3, [1, 2, 3]).png().toFile(path.join(single, 'a.png'));
    expect((await errorOf(() => loadImageFolder(path.join(tmp, 'folder-single'), { size: 8, channels: 3 }))).message).toBe(
      `${path.join(tmp, 'folder-single')}: only one class folder (only); class-conditional training needs at least 2 classes`,
    );

    const bad = mk('folder-bad', 'a');
    mk('folder-bad', 'b');
    await solid(4, 4, 3, [1, 2, 3]).png().toFile(path.join(bad, 'ok.png'));
    await solid(4, 4, 3, [1, 2, 3]).png().toFile(path.join(tmp, 'folder-bad', 'b', 'ok.png'));
    fs.writeFileSync(path.join(bad, 'z-corrupt.png'), 'this is not a png');
    const eBad = await errorOf(() => loadImageFolder(path.join(tmp, 'folder-bad'), { size: 8, channels: 3 }));
    expect(eBad).toBeInstanceOf(UserError);
    expect(eBad.message).toMatch(new RegExp(`^${path.join(bad, 'z-corrupt.png')}: corrupt or unreadable image \\(.+\\)$`));
    fs.rmSync(path.join(bad, 'z-corrupt.png'));

    const png = await solid(16, 16, 3, [9, 9, 9]).png().toBuffer();
    fs.writeFileSync(path.join(bad, 'truncated.png'), u8(png).subarray(0, png.byteLength - 20));
    expect((await errorOf(() => loadImageFolder(path.join(tmp, 'folder-bad'), { size: 8, channels: 3 }))).message).toMatch(
      /truncated\.png: corrupt or unreadable image \(.+\)$/,
    );
    fs.rmSync(path.join(bad, 'truncated.png'));

    await solid(20, 20, 3, [9, 9, 9]).png().toFile(path.join(bad, 'big.png'));
    expect((await errorOf(() => loadImageFolder(path.join(tmp, 'folder-bad'), { size: 8, channels: 3, maxPixels: 100 }))).message).toBe(
      `${path.join(bad, 'big.png')}: image too large (20x20 = 400 pixels, limit 100 pixels)`,
    );
    expect((await loadImageFolder(path.join(tmp, 'folder-bad'), { size: 8, channels: 3 })).n).toBe(3);
  });
});

describe('batches', () => {
  it('takes consecutive slices of per-epoch permutations, straddling epochs', () => {
    const n = 10;
    const stream = [...new Rng('s/epoch0').permutation(n), ...new Rng('s/epoch1').permutation(n), ...new Rng('s/epoch2').permutation(n)];
    for (let step = 0; step < 7; step++) expect([...batchIndices(n, 4, step, 's')]).toEqual(stream.slice(step * 4, step * 4 + 4));
    // step 2 covers positions 8..11: the last two of epoch 0 and the first two of epoch 1
    const perm0 = new Rng('s/epoch0').permutation(n);
    const perm1 = new Rng('s/epoch1').permutation(n);
    expect([...batchIndices(n, 4, 2, 's')]).toEqual([perm0[8], perm0[9], perm1[0], perm1[1]]);
    // each epoch is a permutation, and epochs differ
    expect([...stream.slice(0, 10)].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect([...stream.slice(10, 20)].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(stream.slice(0, 10)).not.toEqual(stream.slice(10, 20));
  });

  it('is a pure function of (n, batch, step, seed), as a resumed run needs', () => {
    const a = batchIndices(1000, 32, 12345, 7);
    for (let s = 0; s < 5; s++) batchIndices(777, 5, s, 'other'); // unrelated calls in between
    expect([...batchIndices(1000, 32, 12345, 7)]).toEqual([...a]);
    expect([...batchIndices(1000, 32, 12345, 8)]).not.toEqual([...a]);
    const epoch = Math.floor((12345 * 32) / 1000);
    const perm = new Rng(`7/epoch${epoch}`).permutation(1000);
    expect(a[0]).toBe(perm[(12345 * 32) % 1000]);
  });

  it('draws deterministic per-step flip masks', () => {
    expect([...flipMask(8, 3, 'x', false)]).toEqual(new Array(8).fill(0));
    const m = flipMask(1000, 3, 'x', true);
    expect([...flipMask(1000, 3, 'x', true)]).toEqual([...m]);
    expect([...flipMask(1000, 4, 'x', true)]).not.toEqual([...m]);
    const ones = m.reduce((s, v) => s + v, 0);
    expect(ones).toBeGreaterThan(430);
    expect(ones).toBeLessThan(570);
  });

  it('gathers images (with horizontal flips), labels and subsets', () => {
    // 3 images of 2x3 RGB; pixel value = 100*image + 10*x + channel
    const images = new Uint8Array(3 * 2 * 3 * 3);
    for (let i = 0; i < 3; i++) for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) for (let c = 0; c < 3; c++) images[((i * 2 + y) * 3 + x) * 3 + c] = 100 * i + 10 * x + c;
    const ds: ImageDataset = { name: 't', images, n: 3, height: 2, width: 3, channels: 3, labels: Int32Array.from([5, 6, 7]), classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] };
    const out = gatherImages(ds, [2, 0], Uint8Array.from([1, 0]));
    expect([...out.subarray(0, 9)]).toEqual([220, 221, 222, 210, 211, 212, 200, 201, 202]); // row 0 of image 2, mirrored
    expect([...out.subarray(18, 27)]).toEqual([0, 1, 2, 10, 11, 12, 20, 21, 22]); // image 0 unchanged
    expect([...gatherLabels(ds, [2, 0, 0])]).toEqual([7, 5, 5]);
    const sub = subset(ds, [1]);
    expect([sub.n, sub.images[0], sub.labels[0]]).toEqual([1, 100, 6]);
    expect(() => gatherImages(ds, [3])).toThrow('out of range');
  });

  it('picks the first images of each class, grouped by class', () => {
    const ds: ImageDataset = { name: 't', images: new Uint8Array(6), n: 6, height: 1, width: 1, channels: 1, labels: Int32Array.from([1, 0, 1, 1, 0, 0]), classNames: ['a', 'b'] };
    expect([...firstPerClass(ds, 2)]).toEqual([1, 4, 0, 2]);
  });
});
