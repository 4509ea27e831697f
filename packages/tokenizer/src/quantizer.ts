import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '@factorgen/shared';
import type { TokenizerConfig } from './config';
import { fqQuantizer } from './fq';
import { vqQuantizer } from './vq';

/** What a quantizer returns for a latent map [B,h,w,C]. Caller owns (disposes) all tensors. */
export type QuantizerOutput = {
  /** [B,h,w,latentChannels]: concat of the K straight-through codes, 1x1-projected (`quant/post`) for the decoder */
  quantized: tf.Tensor4D;
  /** int32 [B,h,w,K] */
  indices: tf.Tensor4D;
  /** per sub-codebook [B,h,w,d_k]: normalized pre-quantization codes (disentanglement) */
  subCodes: tf.Tensor4D[];
  /** per sub-codebook [B,h,w,d_k]: straight-through quantized codes (alignment) */
  quantizedSub: tf.Tensor4D[];
  /**
   * Weighted scalars, summed over sub-codebooks: codebook = sum_k mean((sg(z)-zq)^2),
   * commitment = beta * sum_k mean((z-sg(zq))^2), entropy = entropyWeight * sum_k entropyLoss (0 when the weight is 0).
   */
  losses: { codebook: tf.Scalar; commitment: tf.Scalar; entropy: tf.Scalar };
};

/** The two quantizers share this contract and the parameter names 'quant/k{k}/{proj,codebook}', 'quant/post'. */
export interface Quantizer {
  readonly kind: 'vq' | 'fq';
  /** Registers the quantizer's parameters (order: per sub-codebook proj then codebook, then post). */
  create(store: ParamStore, cfg: TokenizerConfig): void;
  /** latents: one shared [B,h,w,latentChannels] map, or one per sub-codebook (factorize 'branch') -> QuantizerOutput */
  quantize(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D[]): QuantizerOutput;
  /** indices: int32 [B,h,w,K] -> [B,h,w,latentChannels], equal to `quantized` of the forward pass that produced them */
  lookup(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D;
}

export function quantizerFor(cfg: TokenizerConfig): Quantizer {
  return cfg.quantizer.kind === 'vq' ? vqQuantizer : fqQuantizer;
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
