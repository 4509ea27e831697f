import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '@factorgen/nn';
import type { TokenizerConfig } from '../config/schema';
import type { Quantizer, QuantizerOutput } from './types';
import { quantizerOfKind } from './registry';

export type { Quantizer, QuantizerOutput } from './types';

/** The configured quantizer: the registry's entry for cfg.quantizer.kind. */
export function quantizerFor(cfg: TokenizerConfig): Quantizer {
  return quantizerOfKind(cfg.quantizer.kind);
}

/** Registers the configured quantizer's parameters under 'quant/'. */
export function createQuantizer(store: ParamStore, cfg: TokenizerConfig): void {
  quantizerFor(cfg).create(store, cfg);
}

/**
 * latents: [B,h,w,latentChannels] maps, one shared or one per sub-codebook (what `encode` returns) -> QuantizerOutput.
 * A single map may also be passed as is.
 */
export function quantize(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D | tf.Tensor4D[]): QuantizerOutput {
  const list = Array.isArray(latents) ? latents : [latents];
  const K = cfg.quantizer.subCodebooks.length;
  if (list.length !== 1 && list.length !== K) throw new Error(`quantize: ${list.length} latent maps for ${K} sub-codebooks`);
  return quantizerFor(cfg).quantize(store, cfg, list);
}

/** Token grid -> decoder input. indices: int32 [B,h,w,K] -> [B,h,w,latentChannels]. */
export function lookupCodes(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D {
  const K = cfg.quantizer.subCodebooks.length;
  if (indices.rank !== 4 || indices.shape[3] !== K) throw new Error(`lookupCodes: indices must be [B,h,w,${K}] (got [${indices.shape}])`);
  if (indices.dtype !== 'int32') throw new Error(`lookupCodes: indices must be int32 (got ${indices.dtype})`);
  return quantizerFor(cfg).lookup(store, cfg, indices);
}
