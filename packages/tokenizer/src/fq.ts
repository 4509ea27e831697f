import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '@factorgen/shared';
import { codeDim, cosineEntropyTemperature, type TokenizerConfig } from './config';
import { createSubCodebook, lookupSub, quantizeSub } from './codebook';
import { createLinear, dense } from './layers';
import type { Quantizer, QuantizerOutput } from './quantizer';

/**
 * Factorized quantization (FQGAN): K independent sub-codebooks, each with its own 1x1 projection
 * latent -> d_k (of the one shared latent, or of its own branch's latent when factorize = 'branch'), L2 normalization, cosine match and straight-through; the K codes are concatenated and
 * projected back to latentChannels by `quant/post`. The token at a position is the K-tuple of indices.
 */
export const fqQuantizer: Quantizer = {
  kind: 'fq',

  create(store: ParamStore, cfg: TokenizerConfig): void {
    cfg.quantizer.subCodebooks.forEach((s, k) => createSubCodebook(store, k, cfg.latentChannels, s.size, s.dim));
    createLinear(store, 'quant/post', codeDim(cfg), cfg.latentChannels);
  },

  quantize(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D[]): QuantizerOutput {
    const q = cfg.quantizer;
    const temp = q.entropyWeight > 0 ? cosineEntropyTemperature(q) : null;
    // One shared latent ('projection') or one per sub-codebook ('branch').
    const subs = q.subCodebooks.map((_s, k) => quantizeSub(store, k, latents.length === 1 ? latents[0] : latents[k], temp));
    const zqs = subs.map((s) => s.zq);
    return {
      quantized: dense(store, 'quant/post', tf.concat(zqs, 3)),
      indices: tf.stack(subs.map((s) => s.indices), 3) as tf.Tensor4D,
      subCodes: subs.map((s) => s.z),
      quantizedSub: zqs,
      losses: {
        codebook: tf.addN(subs.map((s) => s.codebook)),
        commitment: tf.mul(tf.addN(subs.map((s) => s.commitment)), q.beta),
        entropy: tf.mul(tf.addN(subs.map((s) => s.entropy)), q.entropyWeight),
      },
    };
  },

  lookup(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D {
    const K = cfg.quantizer.subCodebooks.length;
    const perK = tf.unstack(indices, 3) as tf.Tensor3D[];
    const codes = perK.slice(0, K).map((idx, k) => lookupSub(store, k, idx));
    return dense(store, 'quant/post', tf.concat(codes, 3));
  },
};
