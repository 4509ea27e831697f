import * as tf from '@tensorflow/tfjs';

/**
 * Rotary position embeddings (Su et al. 2021, RoFormer), in LlamaGen's 1-D and 2-D forms.
 */

/** Rotary tables in the rotate-half layout: row p holds [cos(theta_p) | cos(theta_p)], same for sin. */
export type RopeTable = { cos: Float32Array; sin: Float32Array; length: number; headDim: number };

const ropeCache = new Map<string, RopeTable>();

/**
 * Rotary tables for the backbone's input sequence [class, x_0, ..., x_{T-2}] (length T = gridH*gridW).
 * Position 0 (the class token) gets cos = 1, sin = 0 (`classRope` 'identity': its q and k pass unrotated) or
 * cos = sin = 0 ('zero': LlamaGen's precompute_freqs_cis_2d, whose cls_token_num rows are zeros, as FQGAN's FAR: its
 * q and k become zero, so every query gives the class key the score 0 and the class token attends uniformly); position p >= 1 holds token x_{p-1}, rotated by its
 * raster index p-1 ('1d') or by its (row, col) on the grid ('2d': the first headDim/4 channel pairs by the row, the
 * rest by the column). Pair j of an axis with n pairs turns at base^(-j/n) per step (= base^(-2j/d) over its d = 2n
 * channels), as in LlamaGen. Memoized.
 */
export function backboneRope(mode: '1d' | '2d', gridH: number, gridW: number, headDim: number, base = 10000, classRope: 'identity' | 'zero' = 'identity'): RopeTable {
  const key = `${mode}:${gridH}:${gridW}:${headDim}:${base}:${classRope}`;
  const hit = ropeCache.get(key);
  if (hit) return hit;
  const length = gridH * gridW;
  const half = headDim / 2;
  const cos = new Float32Array(length * headDim);
  const sin = new Float32Array(length * headDim);
  const axisPairs = mode === '2d' ? half / 2 : half;
  for (let p = 0; p < length; p++) {
    const idx = p - 1;
    for (let m = 0; m < half; m++) {
      let angle = 0;
      if (p > 0) {
        if (mode === '1d') angle = idx * Math.pow(base, (-2 * m) / (2 * axisPairs));
        else {
          const j = m % axisPairs;
          const coord = m < axisPairs ? Math.floor(idx / gridW) : idx % gridW;
          angle = coord * Math.pow(base, (-2 * j) / (2 * axisPairs));
        }
      }
      const zero = p === 0 && classRope === 'zero';
      const c = zero ? 0 : Math.cos(angle);
      const s = zero ? 0 : Math.sin(angle);
      cos[p * headDim + m] = c;
      cos[p * headDim + half + m] = c;
      sin[p * headDim + m] = s;
      sin[p * headDim + half + m] = s;
    }
  }
  const table = { cos, sin, length, headDim };
  ropeCache.set(key, table);
  return table;
}

/** Rows [start, start+count) of a rope table as tensors cos, sin: [count, headDim]. */
export function ropeSlice(table: RopeTable, start: number, count: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  if (start + count > table.length) throw new Error(`rope: positions ${start}..${start + count - 1} beyond table length ${table.length}`);
  const d = table.headDim;
  return {
    cos: tf.tensor2d(table.cos.subarray(start * d, (start + count) * d), [count, d]),
    sin: tf.tensor2d(table.sin.subarray(start * d, (start + count) * d), [count, d]),
  };
}

const rotateCache = new Map<number, Float32Array>();

/** P: [dh, dh] with x @ P = concat(-x2, x1) for x = concat(x1, x2) (the rotate-half of RoPE). */
function rotateHalfMatrix(dh: number): Float32Array {
  let m = rotateCache.get(dh);
  if (!m) {
    const half = dh / 2;
    m = new Float32Array(dh * dh);
    for (let j = 0; j < half; j++) {
      m[(j + half) * dh + j] = -1;
      m[j * dh + j + half] = 1;
    }
    rotateCache.set(dh, m);
  }
  return m;
}

/**
 * Applies a rotary embedding: x * cos + rotateHalf(x) * sin. x: [B, heads, L, dh], cos/sin: [L, dh] -> same shape.
 * rotateHalf is a 2-D matMul with a constant signed permutation instead of split + concat: strided slices are slow on
 * the cpu backend, and the matMul costs dh MACs per element, small next to the projections.
 */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const dh = x.shape[3];
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, dh]), tf.tensor2d(rotateHalfMatrix(dh), [dh, dh])), x.shape);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
}
