/**
 * Pure-JS pixel conversions shared by the loaders, so every dataset gets the same rules:
 * 'cover' resize (scale to cover size x size, centre crop) with a linear filter, and
 * grey <-> RGB (grey = Rec.601 luma 0.299 R + 0.587 G + 0.114 B, RGB = grey repeated).
 */

/** Filter taps along one axis: for each output index, source indices and normalized weights. */
function axisTaps(inLen: number, outLen: number, scale: number): { idx: Int32Array; w: Float32Array; taps: number } {
  // Triangle filter widened when shrinking (radius 1/scale source pixels) so downscaling averages instead of aliasing.
  const radius = Math.max(1, 1 / scale);
  const taps = Math.ceil(radius) * 2 + 1;
  const idx = new Int32Array(outLen * taps);
  const w = new Float32Array(outLen * taps);
  const offset = (inLen - outLen / scale) / 2; // centre crop
  for (let o = 0; o < outLen; o++) {
    const centre = offset + (o + 0.5) / scale - 0.5;
    const first = Math.floor(centre - radius) + 1;
    let sum = 0;
    for (let t = 0; t < taps; t++) {
      const s = first + t;
      const weight = Math.max(0, 1 - Math.abs(s - centre) / radius);
      idx[o * taps + t] = Math.min(inLen - 1, Math.max(0, s));
      w[o * taps + t] = weight;
      sum += weight;
    }
    for (let t = 0; t < taps; t++) w[o * taps + t] /= sum;
  }
  return { idx, w, taps };
}

type Taps = ReturnType<typeof axisTaps>;
// Whole datasets are resized image by image with the same geometry: compute the taps once.
let tapsCache: { key: string; xs: Taps; ys: Taps } | null = null;

/**
 * Resizes one image [h,w,c] to [size,size,c] the 'cover' way: scaled so it covers the square, centre-cropped.
 * Returns `src` itself when it is already size x size.
 */
export function resizeCover(src: Uint8Array, h: number, w: number, c: number, size: number): Uint8Array {
  if (h === size && w === size) return src;
  const scale = Math.max(size / h, size / w);
  const key = `${h}x${w}->${size}`;
  if (tapsCache?.key !== key) tapsCache = { key, xs: axisTaps(w, size, scale), ys: axisTaps(h, size, scale) };
  const { xs, ys } = tapsCache;
  const mid = new Float32Array(h * size * c); // horizontal pass: [h,size,c]
  for (let y = 0; y < h; y++) {
    for (let o = 0; o < size; o++) {
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let t = 0; t < xs.taps; t++) acc += xs.w[o * xs.taps + t] * src[(y * w + xs.idx[o * xs.taps + t]) * c + k];
        mid[(y * size + o) * c + k] = acc;
      }
    }
  }
  const out = new Uint8Array(size * size * c);
  for (let o = 0; o < size; o++) {
    for (let x = 0; x < size; x++) {
      for (let k = 0; k < c; k++) {
        let acc = 0;
        for (let t = 0; t < ys.taps; t++) acc += ys.w[o * ys.taps + t] * mid[(ys.idx[o * ys.taps + t] * size + x) * c + k];
        out[(o * size + x) * c + k] = Math.round(acc); // Uint8Array clamps to 0..255
      }
    }
  }
  return out;
}

/** Converts interleaved pixels [..., from] to [..., to] channels (1 <-> 3). Returns `src` when from === to. */
export function convertChannels(src: Uint8Array, from: 1 | 3, to: 1 | 3): Uint8Array {
  if (from === to) return src;
  const n = src.length / from;
  const out = new Uint8Array(n * to);
  if (to === 3) {
    for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = src[i];
  } else {
    for (let i = 0; i < n; i++) out[i] = Math.round(0.299 * src[3 * i] + 0.587 * src[3 * i + 1] + 0.114 * src[3 * i + 2]);
  }
  return out;
}
