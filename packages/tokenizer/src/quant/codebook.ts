import * as tf from '@tensorflow/tfjs';
import { ParamStore, stopGradient, createLinear, dense, l2Normalize } from '@factorgen/nn';
import { withoutTape } from '@factorgen/tfjs-ext';
import { fusedCodeEntropyAvailable, fusedCodeEntropyLoss } from './entropy';

/**
 * rows = table[indices] with a gradient for `table` only. tf.gather's own gradient returns the int32 indices
 * as their "gradient", which the tape rejects whenever the indices come from an op on the tape (argMax of
 * similarities that depend on parameters); here the indices get float32 zeros instead.
 * table: [V,d], indices: int32 [N] -> [N,d].
 */
export function gatherRows(table: tf.Tensor2D, indices: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((t, i, save) => {
    const idx = i as tf.Tensor1D;
    (save as tf.GradSaveFunc)([idx]);
    return {
      value: tf.gather(t as tf.Tensor2D, idx),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.unsortedSegmentSum(dy, saved[0] as tf.Tensor1D, table.shape[0]),
        tf.zeros(saved[0].shape, 'float32'),
      ],
    };
  });
  return f(table, indices) as tf.Tensor2D;
}

/** Result of a cosine codebook lookup over N vectors. */
export type CosineLookup = {
  /** int32 [N]: argmax_v cos(z_n, c_v) (first index on ties) */
  indices: tf.Tensor1D;
  /** [N,d]: the chosen L2-normalized codebook rows */
  zq: tf.Tensor2D;
  /** [N,d]: L2-normalized z */
  z: tf.Tensor2D;
  /** [V,d]: the L2-normalized codebook (cosine similarities are z . codes^T) */
  codes: tf.Tensor2D;
};

/** Rows per chunk so that a [rows, V] block holds about 2^22 floats (16 MB). */
function chunkRows(N: number, V: number): number {
  return Math.max(1, Math.min(N, Math.floor((1 << 22) / Math.max(1, V))));
}

/** Rows r.. of t, at most `rows` of them (t itself when one chunk covers it). */
function rowChunk<T extends tf.Tensor>(t: T, r: number, rows: number): T {
  return (rows >= t.shape[0]! ? t : tf.slice(t, r, Math.min(rows, t.shape[0]! - r))) as T;
}

/**
 * Index of the most similar code for each row: argmax_v z_n . c_v (first index on ties), computed in row chunks with
 * the tape off, so the [N, V] similarities never exist at once and nothing is kept for a backward pass (indices have
 * no gradient). z: [N, d], codes: [V, d] (L2-normalized for a cosine match) -> int32 [N]. rows: rows per chunk
 * (default: about 2^22 similarities per chunk).
 */
export function nearestCodes(z: tf.Tensor2D, codes: tf.Tensor2D, rows = chunkRows(z.shape[0], codes.shape[0])): tf.Tensor1D {
  const N = z.shape[0];
  return withoutTape(() => {
    const parts: tf.Tensor1D[] = [];
    for (let r = 0; r < N; r += rows) parts.push(tf.tidy(() => tf.argMax(tf.matMul(rowChunk(z, r, rows), codes, false, true), 1) as tf.Tensor1D));
    if (parts.length === 1) return parts[0]!;
    const out = tf.concat(parts) as tf.Tensor1D;
    tf.dispose(parts);
    return out;
  });
}

/**
 * Cosine lookup shared by both quantizers: z: [N,d], codebook: [V,d] (raw; both are L2-normalized here).
 * Gradients reach the codebook through the gather (zq) (and through codeEntropyLoss(z, codes) when used).
 */
export function cosineLookup(z: tf.Tensor2D, codebook: tf.Tensor2D): CosineLookup {
  const zn = l2Normalize(z);
  const cn = l2Normalize(codebook);
  const indices = nearestCodes(zn, cn);
  return { indices, zq: gatherRows(cn, indices), z: zn, codes: cn };
}

/**
 * Straight-through estimator: the value is exactly `zq`, the gradient goes to `z` unchanged and not to `zq`
 * (same as z + sg(zq - z), but bit-exact zq, so decoding tokens reproduces the forward pass exactly).
 * z, zq: same shape -> same shape.
 */
export function straightThrough<T extends tf.Tensor>(z: T, zq: T): T {
  const f = tf.customGrad((a, b) => {
    return {
      value: (b as tf.Tensor).clone(),
      gradFunc: (dy: tf.Tensor) => [dy.clone(), tf.zerosLike(dy)],
    };
  });
  return f(z, zq) as T;
}

/**
 * VQ-VAE losses on normalized vectors z, zq: [N,d] (unweighted).
 * codebook = mean((sg(z) - zq)^2) moves codes; commitment = mean((z - sg(zq))^2) moves the encoder (times beta by the caller).
 */
export function codebookLosses(z: tf.Tensor, zq: tf.Tensor): { codebook: tf.Scalar; commitment: tf.Scalar } {
  const dc = tf.sub(stopGradient(z), zq);
  const de = tf.sub(z, stopGradient(zq));
  return { codebook: tf.mean(tf.mul(dc, dc)) as tf.Scalar, commitment: tf.mean(tf.mul(de, de)) as tf.Scalar };
}

/**
 * Codebook-usage entropy loss (MaskGIT/LlamaGen form, unweighted): with p_n = softmax(similarity_n / temperature),
 * mean_n H(p_n) - H(mean_n p_n). Low per-vector entropy = confident assignments; high batch entropy = all codes used.
 * similarity: [N,V] -> scalar. (FQGAN uses -||z-c||^2 = 2cos - 2 as logits, i.e. our temperature T equals theirs T/2.)
 * The quantizers use codeEntropyLoss (same value, memory-lean); this plain form is its reference.
 */
export function entropyLoss(similarity: tf.Tensor2D, temperature: number): tf.Scalar {
  const logits = tf.div(similarity, temperature);
  const logp = tf.logSoftmax(logits);
  const p = tf.exp(logp);
  const sampleEntropy = tf.neg(tf.mean(tf.sum(tf.mul(p, logp), 1)));
  const avg = tf.mean(p, 0);
  const avgEntropy = tf.neg(tf.sum(tf.mul(avg, tf.log(tf.add(avg, 1e-5)))));
  return tf.sub(sampleEntropy, avgEntropy) as tf.Scalar;
}

const entropyEps = 1e-5;

/**
 * entropyLoss(z codes^T, temperature) without any N x V tensor on the tape: the fused SIMD128 op
 * (fusedCodeEntropyLoss: one pass per row, ~10x less time on wasm) where the backend keeps tensors in CPU memory
 * (wasm, cpu), else the chunked tfjs route (codeEntropyLossChunked). Both give the same value and gradients within
 * float32 rounding. z: [N, d], codes: [V, d] -> scalar (nats).
 */
export function codeEntropyLoss(z: tf.Tensor2D, codes: tf.Tensor2D, temperature: number): tf.Scalar {
  return fusedCodeEntropyAvailable() ? fusedCodeEntropyLoss(z, codes, temperature) : codeEntropyLossChunked(z, codes, temperature);
}

/**
 * entropyLoss(z codes^T, temperature) computed in row chunks with a custom gradient that recomputes the softmax: the
 * tape keeps z and codes only, not the [N, V] similarities, probabilities and their gradients (4-5 copies of N x V
 * floats per sub-codebook otherwise: 100 MB each at N = 1568, V = 16384).
 * Gradient, with a = similarity / T, p_n = softmax(a_n), H_n = H(p_n), avg = mean_n p_n and
 * g = dH(avg)/d avg = -(log(avg + eps) + avg / (avg + eps)): dL/da_nj = -(1/N) p_nj (log p_nj + H_n + g_j - sum_v g_v p_nv).
 * z: [N, d], codes: [V, d] -> scalar. rows: rows per chunk (default: about 2^22 similarities per chunk).
 */
export function codeEntropyLossChunked(z: tf.Tensor2D, codes: tf.Tensor2D, temperature: number, rows = chunkRows(z.shape[0], codes.shape[0])): tf.Scalar {
  const N = z.shape[0];
  const V = codes.shape[0];
  const logProbs = (zc: tf.Tensor2D, c: tf.Tensor2D) => tf.logSoftmax(tf.div(tf.matMul(zc, c, false, true), temperature)) as tf.Tensor2D;
  const op = tf.customGrad((zIn, cIn, save) => {
    const [zt, ct] = [zIn, cIn] as [tf.Tensor2D, tf.Tensor2D];
    let sampleH: tf.Tensor = tf.scalar(0);
    let colSum: tf.Tensor = tf.zeros([V]);
    for (let r = 0; r < N; r += rows) {
      const next = tf.tidy(() => {
        const logp = logProbs(rowChunk(zt, r, rows), ct);
        const p = tf.exp(logp);
        return [tf.sub(sampleH, tf.sum(tf.mul(p, logp))), tf.add(colSum, tf.sum(p, 0))];
      });
      tf.dispose([sampleH, colSum]);
      [sampleH, colSum] = next as [tf.Tensor, tf.Tensor];
    }
    const avg = tf.div(colSum, N);
    const avgH = tf.neg(tf.sum(tf.mul(avg, tf.log(tf.add(avg, entropyEps)))));
    (save as tf.GradSaveFunc)([zt, ct, avg]);
    return {
      value: tf.sub(tf.div(sampleH, N), avgH) as tf.Scalar,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [zs, cs, a] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const g = tf.neg(tf.add(tf.log(tf.add(a, entropyEps)), tf.div(a, tf.add(a, entropyEps))));
        const scale = tf.div(tf.mul(dy as tf.Tensor, -1 / N), temperature);
        const dz: tf.Tensor[] = [];
        let dc: tf.Tensor = tf.zerosLike(cs);
        for (let r = 0; r < N; r += rows) {
          const [dzc, dc1] = tf.tidy(() => {
            const zc = rowChunk(zs, r, rows);
            const logp = logProbs(zc, cs);
            const p = tf.exp(logp);
            const h = tf.neg(tf.sum(tf.mul(p, logp), 1, true));
            const gp = tf.sum(tf.mul(p, g), 1, true);
            const ds = tf.mul(tf.mul(p, tf.add(tf.add(logp, h), tf.sub(g, gp))), scale) as tf.Tensor2D; // dL/d similarity
            // dL/dcodes = ds^T zc, computed as (zc^T ds)^T: the same sums in the same order (bit-identical on wasm),
            // but the explicit transpose is of the thin [rows, d] operand, not of ds [rows, V] (~4x less time at V 256).
            return [tf.matMul(ds, cs), tf.add(dc, tf.transpose(tf.matMul(zc, ds, true, false)))];
          });
          dc.dispose();
          dz.push(dzc!);
          dc = dc1!;
        }
        return [dz.length === 1 ? dz[0]! : tf.concat(dz), dc];
      },
    };
  });
  return op(z, codes) as tf.Scalar;
}

/** Parameter prefix of sub-codebook k: 'quant/k0', 'quant/k1', ... */
export const subPrefix = (k: number): string => `quant/k${k}`;

/**
 * One sub-codebook: projection `quant/k{k}/proj` (1x1 conv latentChannels -> dim) then codebook `quant/k{k}/codebook` [size,dim]
 * (standard normal rows: uniformly random directions once normalized). Creation order is part of the seed contract.
 */
export function createSubCodebook(store: ParamStore, k: number, latentChannels: number, size: number, dim: number, projection = true): void {
  if (projection) createLinear(store, `${subPrefix(k)}/proj`, latentChannels, dim);
  store.create(`${subPrefix(k)}/codebook`, [size, dim], { kind: 'normal', std: 1 });
}

/** One sub-codebook applied to a latent map. */
export type SubQuantized = {
  /** [B,h,w,d] normalized pre-quantization code */
  z: tf.Tensor4D;
  /** [B,h,w,d] straight-through quantized code (value = normalized codebook row) */
  zq: tf.Tensor4D;
  /** int32 [B,h,w] */
  indices: tf.Tensor3D;
  /** unweighted scalars; entropy is 0 when not requested */
  codebook: tf.Scalar;
  commitment: tf.Scalar;
  entropy: tf.Scalar;
};

/** latent: [B,h,w,C] -> project to d_k, normalize, cosine match, straight-through; see SubQuantized. */
export function quantizeSub(store: ParamStore, k: number, latent: tf.Tensor4D, entropyTemperature: number | null): SubQuantized {
  return quantizeProjected(store, k, dense(store, `${subPrefix(k)}/proj`, latent), entropyTemperature);
}

/** As quantizeSub, for a code map [B,h,w,d_k] already projected (UniTok's attention projection does its own). */
export function quantizeProjected(store: ParamStore, k: number, proj: tf.Tensor4D, entropyTemperature: number | null): SubQuantized {
  const [B, h, w] = proj.shape;
  const d = proj.shape[3];
  const look = cosineLookup(tf.reshape(proj, [-1, d]), store.get(`${subPrefix(k)}/codebook`) as tf.Tensor2D);
  const { codebook, commitment } = codebookLosses(look.z, look.zq);
  const entropy = entropyTemperature === null ? tf.scalar(0) : codeEntropyLoss(look.z, look.codes, entropyTemperature);
  return {
    z: tf.reshape(look.z, [B, h, w, d]),
    zq: tf.reshape(straightThrough(look.z, look.zq), [B, h, w, d]),
    indices: tf.reshape(look.indices, [B, h, w]),
    codebook,
    commitment,
    entropy,
  };
}

/** indices: int32 [B,h,w] -> [B,h,w,d] normalized rows of sub-codebook k (what the forward pass quantizes to). */
export function lookupSub(store: ParamStore, k: number, indices: tf.Tensor3D): tf.Tensor4D {
  const [B, h, w] = indices.shape;
  const cn = l2Normalize(store.get(`${subPrefix(k)}/codebook`) as tf.Tensor2D);
  const rows = gatherRows(cn, tf.reshape(indices, [-1]));
  return tf.reshape(rows, [B, h, w, cn.shape[1]]);
}
