import * as tf from '@tensorflow/tfjs';
import { ParamStore, createLinear, dense } from '@factorgen/nn';
import { attnProjCausal, codeDim, cosineEntropyTemperature, isBranched, lossesOverK, type TokenizerConfig } from './config';
import { createSubCodebook, lookupSub, quantizeProjected, quantizeSub } from './codebook';
import { attnProjection, createAttnProjection } from './attnProj';
import type { Quantizer, QuantizerOutput } from './quantizerTypes';

/**
 * Factorized quantization (FQGAN): K independent sub-codebooks, each with its own 1x1 projection
 * latent -> d_k (of the one shared latent, or of its own branch's latent when factorize = 'branch'), L2 normalization, cosine match and straight-through; the K codes are concatenated and
 * projected back to latentChannels by `quant/post`. The token at a position is the K-tuple of indices.
 */
export const fqQuantizer: Quantizer = {
  kind: 'fq',

  create(store: ParamStore, cfg: TokenizerConfig): void {
    const attn = cfg.quantProj === 'attn';
    cfg.quantizer.subCodebooks.forEach((s, k) => createSubCodebook(store, k, cfg.latentChannels, s.size, s.dim, !attn));
    if (!attn) {
      createLinear(store, 'quant/post', codeDim(cfg), cfg.latentChannels);
      return;
    }
    // UniTok: one attention projection of the latent to all K chunks (per branch: of its latent to its chunk), one back.
    if (isBranched(cfg)) cfg.quantizer.subCodebooks.forEach((s, k) => createAttnProjection(store, `quant/k${k}/attn_pre`, cfg.latentChannels, s.dim));
    else createAttnProjection(store, 'quant/attn_pre', cfg.latentChannels, codeDim(cfg));
    createAttnProjection(store, 'quant/attn_post', codeDim(cfg), cfg.latentChannels);
  },

  quantize(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D[]): QuantizerOutput {
    const q = cfg.quantizer;
    const temp = q.entropyWeight > 0 ? cosineEntropyTemperature(q) : null;
    // One shared latent ('projection') or one per sub-codebook ('branch').
    const subs = cfg.quantProj === 'attn' ? attnSubs(store, cfg, latents, temp) : q.subCodebooks.map((_s, k) => quantizeSub(store, k, latents.length === 1 ? latents[0] : latents[k], temp));
    const zqs = subs.map((s) => s.zq);
    // Sum over the K sub-codebooks (FQGAN), or their mean (UniTok); 1/K is applied to the sum, so 'sum' is unchanged.
    const overK = lossesOverK(q) === 'mean' ? (t: tf.Tensor) => tf.div(t, subs.length) as tf.Scalar : (t: tf.Tensor) => t as tf.Scalar;
    return {
      quantized: post(store, cfg, tf.concat(zqs, 3)),
      indices: tf.stack(subs.map((s) => s.indices), 3) as tf.Tensor4D,
      subCodes: subs.map((s) => s.z),
      quantizedSub: zqs,
      losses: {
        codebook: overK(tf.addN(subs.map((s) => s.codebook))),
        commitment: tf.mul(overK(tf.addN(subs.map((s) => s.commitment))), q.beta),
        entropy: tf.mul(overK(tf.addN(subs.map((s) => s.entropy))), q.entropyWeight),
      },
    };
  },

  lookup(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D {
    const K = cfg.quantizer.subCodebooks.length;
    const perK = tf.unstack(indices, 3) as tf.Tensor3D[];
    const codes = perK.slice(0, K).map((idx, k) => lookupSub(store, k, idx));
    return post(store, cfg, tf.concat(codes, 3));
  },
};

/** Concatenated codes [B,h,w,sum d_k] -> decoder input [B,h,w,latentChannels]: 1x1 conv, or UniTok's attention projection. */
function post(store: ParamStore, cfg: TokenizerConfig, codes: tf.Tensor4D): tf.Tensor4D {
  return cfg.quantProj === 'attn' ? attnProjection(store, 'quant/attn_post', codes, cfg.latentChannels, attnProjCausal(cfg)) : dense(store, 'quant/post', codes);
}

/** UniTok's quant_proj: the latent(s) through the attention projection, split into the K chunks, each quantized. */
function attnSubs(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D[], temp: number | null) {
  const subs = cfg.quantizer.subCodebooks;
  if (isBranched(cfg)) return subs.map((s, k) => quantizeProjected(store, k, attnProjection(store, `quant/k${k}/attn_pre`, latents[k], s.dim, attnProjCausal(cfg)), temp));
  const chunks = tf.split(attnProjection(store, 'quant/attn_pre', latents[0], codeDim(cfg), attnProjCausal(cfg)), subs.map((s) => s.dim), 3) as tf.Tensor4D[];
  return chunks.map((c, k) => quantizeProjected(store, k, c, temp));
}
