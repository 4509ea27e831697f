import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fontAdvance, glyphRows } from '@factorgen/formats';
import { gridLayout, toFloat, toUint8 } from '@factorgen/formats';
import { readImage, splitImages, writeComparisonGrid, writeGrid, writePng } from '@factorgen/io';

let tmp: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-image-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const readRaw = async (file: string) => {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), info };
};

describe('toFloat / toUint8', () => {
  it('maps 0..255 to [-1, 1] and back exactly, clipping out-of-range values', async () => {
    const before = tf.memory().numTensors;
    const pixels = Uint8Array.from({ length: 256 }, (_, i) => i);
    const x = toFloat(pixels, [4, 4, 4, 4]);
    expect(x.shape).toEqual([4, 4, 4, 4]);
    const v = await x.data();
    expect([v[0], v[255]]).toEqual([-1, 1]);
    expect(v[51]).toBeCloseTo(51 / 127.5 - 1, 6);
    expect([...(await toUint8(x))]).toEqual([...pixels]);
    x.dispose();
    const y = tf.tensor4d([2, -3, 0, 0.5, -1, 1, Number.NaN, 0.999], [1, 2, 2, 2]);
    expect([...(await toUint8(y))]).toEqual([255, 0, 128, 191, 0, 255, 0, 255]);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => toFloat(pixels, [1, 2, 2, 2])).toThrow('do not fit');
  });
});

describe('PNG IO', () => {
  it('writes grey and RGB PNGs (creating folders) and reads images back converted', async () => {
    const grey = Uint8Array.from({ length: 6 * 4 }, (_, i) => i * 10);
    const greyFile = path.join(tmp, 'a', 'b', 'grey.png');
    await writePng(greyFile, grey, 4, 6, 1);
    const meta = await sharp(greyFile).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([6, 4, 1]);
    // 'cover' keeps the scale (4/4) and centre-crops columns 1..4 of each row
    const cropped = [0, 1, 2, 3].flatMap((y) => [1, 2, 3, 4].map((x) => grey[y * 6 + x]));
    expect([...(await readImage(greyFile, 4, 1))]).toEqual(cropped);

    const rgb = new Uint8Array(8 * 8 * 3);
    for (let i = 0; i < 64; i++) rgb.set([i * 4, 255 - i * 4, 7], i * 3);
    const rgbFile = path.join(tmp, 'rgb.png');
    await writePng(rgbFile, rgb, 8, 8, 3);
    expect([...(await readRaw(rgbFile)).data]).toEqual([...rgb]);
    expect([...(await readImage(rgbFile, 8, 3))]).toEqual([...rgb]); // same size: decoded losslessly
    const small = await readImage(rgbFile, 4, 1);
    expect(small.length).toBe(16);
  });
});

describe('writeGrid', () => {
  it('lays out rows with bitmap-font labels on the left', async () => {
    const img = (v: number[]) => {
      const a = new Uint8Array(8 * 8 * 3);
      for (let i = 0; i < 64; i++) a.set(v, i * 3);
      return a;
    };
    const rows = [
      { label: 'T', images: [img([255, 0, 0]), img([0, 255, 0]), img([0, 0, 255])] },
      { label: 'recon', images: [img([10, 20, 30])] },
    ];
    const file = path.join(tmp, 'grid', 'g.png');
    const layout = await writeGrid(file, rows, 8, 8, 3, { scale: 2, pad: 2 });
    // label column: "recon" is 5 glyphs = 5*6-1 = 29 px, + pad; 3 cells of 16 px + pads
    expect([layout.labelWidth, layout.width, layout.height]).toEqual([31, 2 + 31 + 3 * 18, 2 + 2 * 18]);
    const { data, info } = await readRaw(file);
    expect([info.width, info.height, info.channels]).toEqual([87, 38, 3]);
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    // the "T" glyph (9 rows: 7 to the baseline, 2 for descenders), drawn at (pad, row top + (16-9)/2) = (2, 5), pixel for pixel
    const rowsT = glyphRows('T');
    for (let r = 0; r < 9; r++) {
      for (let c = 0; c < fontAdvance - 1; c++) {
        const on = (rowsT[r] >> (4 - c)) & 1;
        expect(at(2 + c, 5 + r)).toEqual(on ? [0, 0, 0] : [255, 255, 255]);
      }
    }
    expect(at(2 + 31 + 3, 2 + 3)).toEqual([255, 0, 0]); // first cell of row 0
    expect(at(2 + 31 + 18 + 15, 2 + 15)).toEqual([0, 255, 0]); // last pixel of second cell
    expect(at(2 + 31 + 36 + 5, 2 + 5)).toEqual([0, 0, 255]);
    expect(at(2 + 31 + 5, 20 + 5)).toEqual([10, 20, 30]); // row 1
    expect(at(2 + 31 + 18 + 5, 20 + 5)).toEqual([255, 255, 255]); // row 1 has one image only
    let dark = 0;
    for (let y = 20; y < 36; y++) for (let x = 0; x < 33; x++) if (at(x, y)[0] === 0) dark++;
    expect(dark).toBeGreaterThan(40); // "recon" was drawn
  });

  it('writes grey grids and original/recon comparisons', async () => {
    const a = Uint8Array.from({ length: 2 * 28 * 28 }, (_, i) => i % 256);
    const imgs = splitImages(a, 28, 28, 1);
    expect(imgs).toHaveLength(2);
    const file = path.join(tmp, 'cmp.png');
    const layout = await writeComparisonGrid(file, imgs, imgs, 28, 28, 1, { scale: 2 });
    expect(layout).toEqual(gridLayout([{ label: 'original', images: imgs }, { label: 'recon', images: imgs }], 28, 28, { scale: 2 }));
    expect(layout.fontScale).toBe(2); // 56-px cells get 2x text
    const meta = await sharp(file).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([layout.width, layout.height, 1]);
    // pad 2 x font scale = 4: border, label "original" (8 glyphs of 6 px, less the last gap, x2), gap, 2 cells + gaps
    expect(layout.width).toBe(4 + (8 * 6 - 1) * 2 + 4 + 2 * (56 + 4));
  });
});
