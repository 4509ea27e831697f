import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '@factorgen/nn';
import { codeDim, cosineEntropyTemperature, isBranched, type TokenizerConfig } from '../config/schema';
import { createSubCodebook, quantizeProjected } from './codebook';
import { attnProjection, createAttnProjection } from './attnProj';
import { combineSubs, lookupAll } from './fq';
import type { Quantizer, QuantizerOutput } from './types';

/**
 * UniTok's multi-codebook quantizer (UniTok, quant_proj / post_quant_proj around VectorQuantizerM): the latent goes
 * through one attention projection (attnProj.ts) to all K chunks of widths d_k (with factorize 'branch': each branch's
 * latent through its own projection to its chunk), each chunk is L2-normalized, cosine-matched and straight-through
 * quantized in its sub-codebook, and the concatenated codes go back to latentChannels through a second attention
 * projection 'quant/attn_post'. The attention is quantizer.attention ('causal' over raster order, or 'bidirectional').
 * Parameters: 'quant/k{k}/codebook', 'quant/attn_pre' (or 'quant/k{k}/attn_pre'), 'quant/attn_post'.
 */
export const unitokQuantizer: Quantizer = {
  kind: 'unitok',

  create(store: ParamStore, cfg: TokenizerConfig): void {
    cfg.quantizer.subCodebooks.forEach((s, k) => createSubCodebook(store, k, cfg.latentChannels, s.size, s.dim, false));
    if (isBranched(cfg)) cfg.quantizer.subCodebooks.forEach((s, k) => createAttnProjection(store, `quant/k${k}/attn_pre`, cfg.latentChannels, s.dim));
    else createAttnProjection(store, 'quant/attn_pre', cfg.latentChannels, codeDim(cfg));
    createAttnProjection(store, 'quant/attn_post', codeDim(cfg), cfg.latentChannels);
  },

  quantize(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D[]): QuantizerOutput {
    const q = cfg.quantizer;
    const temp = q.entropyWeight > 0 ? cosineEntropyTemperature(q) : null;
    const causal = isCausal(cfg);
    let subs;
    if (isBranched(cfg)) {
      subs = q.subCodebooks.map((s, k) => quantizeProjected(store, k, attnProjection(store, `quant/k${k}/attn_pre`, latents[k], s.dim, causal), temp));
    } else {
      const all = attnProjection(store, 'quant/attn_pre', latents[0], codeDim(cfg), causal);
      const chunks = tf.split(all, q.subCodebooks.map((s) => s.dim), 3) as tf.Tensor4D[];
      subs = chunks.map((c, k) => quantizeProjected(store, k, c, temp));
    }
    return combineSubs(cfg, subs, (codes) => post(store, cfg, codes));
  },

  lookup(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D {
    return post(store, cfg, lookupAll(store, cfg, indices));
  },
};

const isCausal = (cfg: TokenizerConfig): boolean => cfg.quantizer.attention === 'causal';

/** Concatenated codes [B,h,w,sum d_k] -> decoder input [B,h,w,latentChannels] through UniTok's post projection. */
function post(store: ParamStore, cfg: TokenizerConfig, codes: tf.Tensor4D): tf.Tensor4D {
  return attnProjection(store, 'quant/attn_post', codes, cfg.latentChannels, isCausal(cfg));
}
