import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import type { ImageDataset } from '@factorgen/formats';
import { randomSubset, readSampleFolder } from '@factorgen/pipelines';

const classes = ['t-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];

let root = '';
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'samples-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

async function writePng(file: string, pixels: Uint8Array, size: number, channels: 1 | 3): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(Buffer.from(pixels), { raw: { width: size, height: size, channels } }).png().toFile(file);
}

const ramp = (size: number, channels: number, offset: number) =>
  Uint8Array.from({ length: size * size * channels }, (_, i) => (i * 7 + offset) % 256);

/** Expects `promise` to reject with a UserError whose one-line message matches `pattern`. */
async function expectUserError(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  const message = (err as UserError).message;
  expect(message).toMatch(pattern);
  expect(message).not.toContain('\n');
}

describe('readSampleFolder', () => {
  it('reads <index>-<slug>/*.png with labels from the folder prefix, in class then file order', async () => {
    const a = ramp(6, 1, 0);
    const b = ramp(6, 1, 50);
    const c = ramp(6, 1, 100);
    await writePng(path.join(root, '7-sneaker', '0001.png'), c, 6, 1);
    await writePng(path.join(root, '7-sneaker', '0000.png'), b, 6, 1);
    await writePng(path.join(root, '0-t-shirt-top', '0000.png'), a, 6, 1);
    fs.writeFileSync(path.join(root, '7-sneaker', 'notes.txt'), 'ignored');
    fs.writeFileSync(path.join(root, 'grid.png'), 'top-level files are ignored');
    const ds = await readSampleFolder(root, classes, 6, 1);
    expect(ds.n).toBe(3);
    expect([...ds.labels]).toEqual([0, 7, 7]);
    expect([ds.height, ds.width, ds.channels]).toEqual([6, 6, 1]);
    expect(ds.classNames).toEqual(classes);
    expect(Buffer.from(ds.images).equals(Buffer.concat([a, b, c]))).toBe(true);
  });

  it('reads RGB, converts RGB to grey on request, and resizes other sizes', async () => {
    const rgb = ramp(12, 3, 3);
    await writePng(path.join(root, '2-pullover', 'x.png'), rgb, 12, 3);
    const asRgb = await readSampleFolder(root, classes, 12, 3);
    expect(Buffer.from(asRgb.images).equals(Buffer.from(rgb))).toBe(true);
    const grey = await readSampleFolder(root, classes, 12, 1);
    expect(grey.images.length).toBe(144);
    const small = await readSampleFolder(root, classes, 6, 3);
    expect([small.n, small.height, small.images.length]).toEqual([1, 6, 6 * 6 * 3]);
  });

  it('fails with one clear line for a missing folder, no class folders, a bad folder name, an out-of-range index, an empty class folder, a broken PNG', async () => {
    await expectUserError(readSampleFolder(path.join(root, 'nope'), classes, 6, 1), /nope: no such folder$/);
    await expectUserError(readSampleFolder(root, classes, 6, 1), /: no class folders \(expected <index>-<slug>\/ folders of PNGs/);

    fs.mkdirSync(path.join(root, 'sneaker'));
    await expectUserError(readSampleFolder(root, classes, 6, 1), /sneaker: folder name does not parse as <index>-<slug>/);
    fs.rmdirSync(path.join(root, 'sneaker'));

    await writePng(path.join(root, '12-extra', '0.png'), ramp(6, 1, 0), 6, 1);
    await expectUserError(readSampleFolder(root, classes, 6, 1), /12-extra: class index 12 is out of range 0\.\.9$/);
    fs.rmSync(path.join(root, '12-extra'), { recursive: true });

    fs.mkdirSync(path.join(root, '3-dress'));
    await expectUserError(readSampleFolder(root, classes, 6, 1), /3-dress: no \.png files/);

    fs.writeFileSync(path.join(root, '3-dress', '0000.png'), 'not a png');
    await expectUserError(readSampleFolder(root, classes, 6, 1), /3-dress\/0000\.png: corrupt or unreadable image/);
  });
});

describe('subsets', () => {
  const ds: ImageDataset = {
    name: 'toy',
    images: Uint8Array.from({ length: 10 * 4 }, (_, i) => i),
    n: 10,
    height: 2,
    width: 2,
    channels: 1,
    labels: Int32Array.from({ length: 10 }, (_, i) => i % 3),
    classNames: ['a', 'b', 'c'],
  };

  it('randomSubset is seeded: same seed, same rows; distinct rows; too many is a UserError', () => {
    const a = randomSubset(ds, 5, 1);
    expect(randomSubset(ds, 5, 1).images).toEqual(a.images);
    expect(randomSubset(ds, 5, 2).images).not.toEqual(a.images);
    const firstPixels = new Set(Array.from({ length: 5 }, (_, i) => a.images[i * 4]));
    expect(firstPixels.size).toBe(5);
    expect(() => randomSubset(ds, 11)).toThrow(/toy: asked for 11 images, it has 10/);
  });
});
