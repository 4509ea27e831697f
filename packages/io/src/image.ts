import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { decodeImage, defaultMaxPixels } from './data/imageFolder';
import { renderGrid, type GridLayout, type GridOptions } from '@factorgen/formats';
import { makeFolders } from './outputs';




/** Writes pixels [H,W,C] (C = 1 grey, 3 RGB) as a PNG, creating parent folders. */
export async function writePng(file: string, pixels: Uint8Array, height: number, width: number, channels: 1 | 3): Promise<void> {
  if (pixels.length !== height * width * channels)
    throw new Error(`writePng: ${pixels.length} bytes do not fit ${height}x${width}x${channels}`);
  makeFolders(path.dirname(path.resolve(file)));
  const img = sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width, height, channels } });
  // Without an explicit colourspace sharp would write a 1-channel buffer as an RGB PNG.
  const png = await img.toColourspace(channels === 1 ? 'b-w' : 'srgb').png().toBuffer();
  writeFileAtomically(file, png);
}

/**
 * Writes `data` to `file` through a temporary file and a rename: a failed write (a full disk) leaves no partial or
 * 0-byte file, and the error keeps its cause (sharp's toFile says only "write error"; fs says ENOSPC).
 */
export function writeFileAtomically(file: string, data: Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Reads one image file as [size,size,channels] uint8, converted like ImageFolder images (see decodeImage). */
export async function readImage(file: string, size: number, channels: 1 | 3, maxPixels = defaultMaxPixels): Promise<Uint8Array> {
  return decodeImage(file, size, channels, maxPixels);
}

/**
 * Renders pixel images (each [h,w,c] uint8) as a PNG grid on white (see renderGrid: one labelled row per entry of
 * `rows`). Creates parent folders.
 */
export async function writeGrid(
  file: string,
  rows: { label: string; images: Uint8Array[] }[],
  h: number,
  w: number,
  c: 1 | 3,
  opts: GridOptions = {},
): Promise<GridLayout> {
  const { pixels, layout } = renderGrid(rows, h, w, c, opts);
  await writePng(file, pixels, layout.height, layout.width, c);
  return layout;
}

/** Originals over reconstructions: a two-row grid labelled "original" and "recon". */
export async function writeComparisonGrid(
  file: string,
  top: Uint8Array[],
  bottom: Uint8Array[],
  h: number,
  w: number,
  c: 1 | 3,
  opts: GridOptions = {},
): Promise<GridLayout> {
  return writeGrid(file, [{ label: 'original', images: top }, { label: 'recon', images: bottom }], h, w, c, opts);
}

/** Splits a [B,H,W,C] buffer into B images of H*W*C bytes (views, no copy). */
export function splitImages(pixels: Uint8Array, h: number, w: number, c: number): Uint8Array[] {
  const per = h * w * c;
  const out: Uint8Array[] = [];
  for (let i = 0; i + per <= pixels.length; i += per) out.push(pixels.subarray(i, i + per));
  return out;
}
