import * as tf from '@tensorflow/tfjs';
import { gridSize } from './config/schema';
import { lookupSub } from './quant/codebook';
import type { Tokenizer } from './model';

/**
 * Mean-pooled quantized codes of each sub-codebook: tokens int32 [N, h*w, K] (as encodeImages returns them) ->
 * per sub-codebook k a row-major [N, d_k] array: the mean over positions of sub-codebook k's normalized code vectors
 * (what the decoder's input is made of). UniTok's linear-probe input, per sub-codebook.
 */
export async function pooledSubCodes(tok: Tokenizer, tokens: Int32Array, n: number, batch = 500): Promise<Float32Array[]> {
  const g = gridSize(tok.cfg);
  const subs = tok.cfg.quantizer.subCodebooks;
  const K = subs.length;
  if (tokens.length !== n * g * g * K) throw new Error(`pooledSubCodes: ${tokens.length} tokens for ${n} x ${g * g} x ${K}`);
  const out = subs.map((s) => new Float32Array(n * s.dim));
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const pooled = tf.tidy(() => {
      const idx = tf.tensor4d(tokens.subarray(i * g * g * K, (i + b) * g * g * K), [b, g, g, K], 'int32');
      return (tf.unstack(idx, 3) as tf.Tensor3D[]).map((t, k) => tf.mean(lookupSub(tok.params, k, t), [1, 2]));
    });
    const data = await Promise.all(pooled.map((p) => p.data()));
    data.forEach((d, k) => out[k].set(d as Float32Array, i * subs[k].dim));
    tf.dispose(pooled);
  }
  return out;
}

/**
 * Token maps that take sub-codebook `k` from `fixed` and every other sub-codebook from `varied` (both int32
 * [h*w, K] of one image): decoding them shows what sub-codebook k carries. -> int32 [h*w, K].
 */
export function swapSubCodebook(fixed: Int32Array, varied: Int32Array, K: number, k: number): Int32Array {
  if (fixed.length !== varied.length || fixed.length % K !== 0) throw new Error(`swapSubCodebook: token maps of ${fixed.length} and ${varied.length} values for K = ${K}`);
  const out = Int32Array.from(varied);
  for (let p = k; p < out.length; p += K) out[p] = fixed[p];
  return out;
}
