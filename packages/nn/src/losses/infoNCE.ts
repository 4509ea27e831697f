import * as tf from '@tensorflow/tfjs';
import { stopGradient } from '../nn';
import { l2Normalize } from '../layers/norm';

/**
 * InfoNCE (van den Oord et al. 2018) between predictions and (frozen) targets over the batch: rows L2-normalized,
 * s = pred_n target_n^T / temperature ([B, B]), positives on the diagonal; the target side gets no gradient.
 * pred, target: [B, E] -> scalar (nats). Throws when the shapes differ.
 *
 * `directions`, each in its source's own arithmetic:
 * - 'both' (CLIP, Radford et al. 2021; UniTok): the mean of the row (pred -> target) and column (target -> pred)
 *   cross-entropies, via logSoftmax; the second direction penalizes predictions collapsing onto one target.
 * - 'predToTarget' (FQGAN, CLIPVisionTower.forward in clip_encoder.py, temperature 1): -mean_i log(exp(s_ii) /
 *   sum_j exp(s_ij)), exp without max-subtraction (|s| <= 1/temperature keeps it finite).
 */
export function infoNCE(pred: tf.Tensor2D, target: tf.Tensor2D, temperature: number, directions: 'both' | 'predToTarget' = 'both'): tf.Scalar {
  const B = pred.shape[0];
  if (target.shape[0] !== B || target.shape[1] !== pred.shape[1]) {
    throw new Error(`infoNCE: prediction [${pred.shape}] and teacher [${target.shape}] shapes differ`);
  }
  const sim = tf.matMul(l2Normalize(pred), l2Normalize(stopGradient(target)), false, true);
  if (directions === 'predToTarget') {
    // Division by 1 is exact, and skipping it keeps FQGAN's form op for op.
    const m = tf.exp(temperature === 1 ? sim : tf.div(sim, temperature));
    const diag = tf.sum(tf.mul(m, tf.eye(B)), 1);
    return tf.neg(tf.mean(tf.log(tf.div(diag, tf.sum(m, 1))))) as tf.Scalar;
  }
  const logits = tf.div(sim, temperature);
  const eye = tf.eye(B);
  const rowLoss = tf.neg(tf.div(tf.sum(tf.mul(tf.logSoftmax(logits), eye)), B));
  const colLoss = tf.neg(tf.div(tf.sum(tf.mul(tf.logSoftmax(tf.transpose(logits)), eye)), B));
  return tf.mul(tf.add(rowLoss, colLoss), 0.5) as tf.Scalar;
}
