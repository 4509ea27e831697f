import * as tf from '@tensorflow/tfjs';
import { ParamStore, stopGradient } from '@factorgen/nn';
import type { TokenizerConfig } from '../config/schema';
import { l2Normalize } from '../quant/codebook';
import { createLinear, dense, swish } from '../arch/layers';

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
  const h = dense(store, 'align/fc2', swish(dense(store, 'align/fc1', code)));
  return tf.mean(h, [1, 2]) as tf.Tensor2D;
}

/**
 * InfoNCE over the batch between predictions and (frozen) teacher embeddings, both [B,E], L2-normalized,
 * logits = cos / temperature, positives on the diagonal. Symmetric (CLIP/UniTok style): the mean of the
 * prediction->teacher and teacher->prediction cross-entropies; the second direction penalizes many
 * predictions collapsing onto one teacher embedding. The teacher side gets no gradient. -> scalar (unweighted).
 */
export function infoNCE(pred: tf.Tensor2D, teacher: tf.Tensor2D, temperature: number): tf.Scalar {
  const B = pred.shape[0];
  if (teacher.shape[0] !== B || teacher.shape[1] !== pred.shape[1]) {
    throw new Error(`infoNCE: prediction [${pred.shape}] and teacher [${teacher.shape}] shapes differ`);
  }
  const logits = tf.div(tf.matMul(l2Normalize(pred), l2Normalize(stopGradient(teacher)), false, true), temperature);
  const eye = tf.eye(B);
  const rowLoss = tf.neg(tf.div(tf.sum(tf.mul(tf.logSoftmax(logits), eye)), B));
  const colLoss = tf.neg(tf.div(tf.sum(tf.mul(tf.logSoftmax(tf.transpose(logits)), eye)), B));
  return tf.mul(tf.add(rowLoss, colLoss), 0.5) as tf.Scalar;
}

/** align.weight * infoNCE(alignPredict(code), teacherEmbedding). code: [B,h,w,d], teacherEmbedding: [B,teacherDim] -> scalar. */
export function alignLoss(store: ParamStore, cfg: TokenizerConfig, code: tf.Tensor4D, teacherEmbedding: tf.Tensor2D): tf.Scalar {
  const a = cfg.align;
  if (!a) throw new Error('alignLoss: config has no align section');
  if (teacherEmbedding.shape[1] !== a.teacherDim) {
    throw new Error(`alignLoss: teacher embedding dim ${teacherEmbedding.shape[1]} != align.teacherDim ${a.teacherDim}`);
  }
  return tf.mul(infoNCE(alignPredict(store, code), teacherEmbedding, a.temperature), a.weight);
}
