import * as tf from '@tensorflow/tfjs';
import { createLinear, denseOf, infoNCE, mlp, type ParamStore } from '@factorgen/nn';
import type { TokenizerConfig } from '../config/schema';

/**
 * Alignment head under 'align/' (trained with the tokenizer): per-position MLP d -> teacherDim -> teacherDim
 * with swish, then mean-pooled over positions. Nonlinearity before pooling lets the head weigh positions
 * by content (a linear head would reduce to pooling then one matrix). Needs cfg.align.
 */
export function createAlignHead(store: ParamStore, cfg: TokenizerConfig): void {
  const a = cfg.align;
  if (!a) throw new Error('createAlignHead: config has no align section');
  const d = cfg.quantizer.subCodebooks[a.subCodebook].dim;
  createLinear(store, 'align/fc1', d, a.teacherDim);
  createLinear(store, 'align/fc2', a.teacherDim, a.teacherDim);
}

/** quantizedSub: [B,h,w,d] (the aligned sub-codebook's straight-through codes) -> prediction [B,teacherDim]. */
export function alignPredict(store: ParamStore, code: tf.Tensor4D): tf.Tensor2D {
  const h = mlp(code, { fc: denseOf(store, 'align/fc1'), proj: denseOf(store, 'align/fc2') }, 'silu');
  return tf.mean(h, [1, 2]) as tf.Tensor2D;
}

/** align.weight * symmetric InfoNCE (nn's infoNCE, directions 'both') of alignPredict(code) and teacherEmbedding. code: [B,h,w,d], teacherEmbedding: [B,teacherDim] -> scalar. */
export function alignLoss(store: ParamStore, cfg: TokenizerConfig, code: tf.Tensor4D, teacherEmbedding: tf.Tensor2D): tf.Scalar {
  const a = cfg.align;
  if (!a) throw new Error('alignLoss: config has no align section');
  if (teacherEmbedding.shape[1] !== a.teacherDim) {
    throw new Error(`alignLoss: teacher embedding dim ${teacherEmbedding.shape[1]} != align.teacherDim ${a.teacherDim}`);
  }
  return tf.mul(infoNCE(alignPredict(store, code), teacherEmbedding, a.temperature), a.weight);
}
