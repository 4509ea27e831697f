import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Rng } from '@factorgen/nn';

const candidates = [
  join(process.cwd(), 'data/fashion-mnist/t10k-images-idx3-ubyte.gz'),
  '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz',
];

/**
 * The first `n` Fashion-MNIST test images as floats in [-1,1], [n*28*28] row-major (NHWC with C = 1).
 * Falls back to synthetic garment-like silhouettes (seeded) when no IDX file is present, so the
 * test runs everywhere; `source` says which.
 */
export function fashionImages(n: number): { data: Float32Array; source: string } {
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    const buf = gunzipSync(readFileSync(path));
    if (buf.readUInt32BE(0) !== 2051) throw new Error(`${path}: not an IDX image file`);
    const count = buf.readUInt32BE(4);
    const rows = buf.readUInt32BE(8);
    const cols = buf.readUInt32BE(12);
    if (rows !== 28 || cols !== 28 || count < n) throw new Error(`${path}: unexpected shape ${count}x${rows}x${cols}`);
    const data = new Float32Array(n * 784);
    for (let i = 0; i < data.length; i++) data[i] = buf[16 + i] / 127.5 - 1;
    return { data, source: path };
  }
  const rng = new Rng('synthetic-fashion');
  const data = new Float32Array(n * 784).fill(-1);
  for (let i = 0; i < n; i++) {
    // a bright trapezoid (shirt/dress-like) with a random darker band: structure at several scales
    const top = 3 + rng.int(5), bottom = 22 + rng.int(5), w0 = 4 + rng.int(5), w1 = 7 + rng.int(5);
    const band = top + rng.int(bottom - top), level = 0.2 + 0.7 * rng.next();
    for (let y = top; y < bottom; y++) {
      const half = Math.round(w0 + ((w1 - w0) * (y - top)) / (bottom - top));
      for (let x = 14 - half; x < 14 + half; x++) data[i * 784 + y * 28 + x] = Math.abs(y - band) < 2 ? level - 0.8 : level;
    }
  }
  return { data, source: 'synthetic' };
}
