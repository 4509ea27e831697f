import * as tf from '@tensorflow/tfjs';
import { ParamStore, createLinear, dense } from '@factorgen/nn';
import { codeDim, cosineEntropyTemperature, type TokenizerConfig } from '../config/schema';
import { createSubCodebook, lookupSub, quantizeSub, type SubQuantized } from './codebook';
import type { Quantizer, QuantizerOutput } from './types';

/**
 * Factorized quantization (FQGAN): K independent sub-codebooks, each with its own 1x1 projection
 * latent -> d_k (of the one shared latent, or of its own branch's latent when factorize = 'branch'), L2 normalization, cosine match and straight-through; the K codes are concatenated and
 * projected back to latentChannels by `quant/post`. The token at a position is the K-tuple of indices.
 */
export const fqQuantizer: Quantizer = {
  kind: 'fq',

  create(store: ParamStore, cfg: TokenizerConfig): void {
    cfg.quantizer.subCodebooks.forEach((s, k) => createSubCodebook(store, k, cfg.latentChannels, s.size, s.dim, true));
    createLinear(store, 'quant/post', codeDim(cfg), cfg.latentChannels);
  },

  quantize(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D[]): QuantizerOutput {
    const temp = cfg.quantizer.entropyWeight > 0 ? cosineEntropyTemperature(cfg.quantizer) : null;
    // One shared latent ('projection') or one per sub-codebook ('branch').
    const subs = cfg.quantizer.subCodebooks.map((_s, k) => quantizeSub(store, k, latents.length === 1 ? latents[0] : latents[k], temp));
    return combineSubs(cfg, subs, (codes) => dense(store, 'quant/post', codes));
  },

  lookup(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D {
    return dense(store, 'quant/post', lookupAll(store, cfg, indices));
  },
};

/**
 * The K quantized sub-codes -> QuantizerOutput: their concat through `post` ([B,h,w,sum d_k] -> [B,h,w,latentChannels]),
 * indices stacked to [B,h,w,K], and the losses summed over the K sub-codebooks (FQGAN), or averaged (lossOverK 'mean',
 * UniTok; 1/K is applied to the sum, so 'sum' is unchanged).
 */
export function combineSubs(cfg: TokenizerConfig, subs: SubQuantized[], post: (codes: tf.Tensor4D) => tf.Tensor4D): QuantizerOutput {
  const q = cfg.quantizer;
  const zqs = subs.map((s) => s.zq);
  const overK = q.lossOverK === 'mean' ? (t: tf.Tensor) => tf.div(t, subs.length) as tf.Scalar : (t: tf.Tensor) => t as tf.Scalar;
  return {
    quantized: post(tf.concat(zqs, 3)),
    indices: tf.stack(subs.map((s) => s.indices), 3) as tf.Tensor4D,
    subCodes: subs.map((s) => s.z),
    quantizedSub: zqs,
    losses: {
      codebook: overK(tf.addN(subs.map((s) => s.codebook))),
      commitment: tf.mul(overK(tf.addN(subs.map((s) => s.commitment))), q.beta),
      entropy: tf.mul(overK(tf.addN(subs.map((s) => s.entropy))), q.entropyWeight),
    },
  };
}

/** indices: int32 [B,h,w,K] -> the K normalized codebook rows, concatenated: [B,h,w,sum d_k]. */
export function lookupAll(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D {
  const K = cfg.quantizer.subCodebooks.length;
  const perK = tf.unstack(indices, 3) as tf.Tensor3D[];
  return tf.concat(perK.slice(0, K).map((idx, k) => lookupSub(store, k, idx)), 3);
}
