import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from '@factorgen/nn';
import type { QuantizerKind, TokenizerConfig } from '../config/schema';

// The quantizers' shared contract, apart from quantizer.ts (which picks one) so that fq.ts and vq.ts need not import it.

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

/**
 * The quantizers (entries of the registry, registry.ts) share this contract and the parameter names
 * 'quant/k{k}/codebook'; 'vq' and 'fq' also 'quant/k{k}/proj' and 'quant/post', 'unitok' its attention projections.
 */
export interface Quantizer {
  readonly kind: QuantizerKind;
  /** Registers the quantizer's parameters (order: per sub-codebook proj then codebook, then post). */
  create(store: ParamStore, cfg: TokenizerConfig): void;
  /** latents: one shared [B,h,w,latentChannels] map, or one per sub-codebook (factorize 'branch') -> QuantizerOutput */
  quantize(store: ParamStore, cfg: TokenizerConfig, latents: tf.Tensor4D[]): QuantizerOutput;
  /** indices: int32 [B,h,w,K] -> [B,h,w,latentChannels], equal to `quantized` of the forward pass that produced them */
  lookup(store: ParamStore, cfg: TokenizerConfig, indices: tf.Tensor4D): tf.Tensor4D;
}
