import * as tf from '@tensorflow/tfjs';
import { ParamStore, createLinear, dense, l2Normalize } from '@factorgen/nn';
import { cosineEntropyTemperature, type TokenizerConfig } from '../config/schema';
import { codebookLosses, codeEntropyLoss, cosineLookup, gatherRows, straightThrough } from './codebook';
import type { Quantizer, QuantizerOutput } from './types';

/**
 * Single-codebook baseline (LlamaGen-style cosine VQ): 1x1 projection latent -> d, L2 normalization,
 * cosine match, straight-through, 1x1 post projection. Written without the factorized loop on purpose:
 * it uses the same parameter names and creation order as `fq` with K = 1, and the tests check that
 * both produce bit-identical outputs, indices and losses from the same seed.
 */
export const vqQuantizer: Quantizer = {
  kind: 'vq',

  create(store: ParamStore, cfg: TokenizerConfig): void {
    const [{ size, dim }] = cfg.quantizer.subCodebooks;
    createLinear(store, 'quant/k0/proj', cfg.latentChannels, dim);
    store.create('quant/k0/codebook', [size, dim], { kind: 'normal', std: 1 });
    createLinear(store, 'quant/post', dim, cfg.latentChannels);
  },

  quantize(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D[]): QuantizerOutput {
    const q = cfg.quantizer;
    const [latent] = latents;
    const [B, h, w] = latent.shape;
    const d = q.subCodebooks[0].dim;
    const z = tf.reshape(dense(store, 'quant/k0/proj', latent), [-1, d]) as tf.Tensor2D;
    const look = cosineLookup(z, store.get('quant/k0/codebook') as tf.Tensor2D);
    const { codebook, commitment } = codebookLosses(look.z, look.zq);
    const zq = tf.reshape(straightThrough(look.z, look.zq), [B, h, w, d]) as tf.Tensor4D;
    return {
      quantized: dense(store, 'quant/post', zq),
      indices: tf.reshape(look.indices, [B, h, w, 1]),
      subCodes: [tf.reshape(look.z, [B, h, w, d])],
      quantizedSub: [zq],
      losses: {
        codebook,
        commitment: tf.mul(commitment, q.beta),
        entropy: q.entropyWeight > 0 ? tf.mul(codeEntropyLoss(look.z, look.codes, cosineEntropyTemperature(q)), q.entropyWeight) : tf.scalar(0),
      },
    };
  },

  lookup(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D {
    const [B, h, w] = indices.shape;
    const cn = l2Normalize(store.get('quant/k0/codebook') as tf.Tensor2D);
    const rows = tf.reshape(gatherRows(cn, tf.reshape(indices, [-1])), [B, h, w, cn.shape[1]]) as tf.Tensor4D;
    return dense(store, 'quant/post', rows);
  },
};
