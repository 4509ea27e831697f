import * as tf from '@tensorflow/tfjs';
import { l2Normalize } from '@factorgen/nn';

/**
 * Disentanglement regularizer (FQGAN): for each pair (i, j) of sub-codes with equal dims, the mean over
 * positions of cos(c_i, c_j)^2, averaged over those pairs, times `weight`. Driving it to 0 makes the
 * sub-codebooks encode complementary (orthogonal) information.
 *
 * codes: K maps [B,h,w,d_k] -> scalar. Pairs whose dims differ are skipped: a cosine needs a common space,
 * and projecting through extra matrices would add parameters that could trivially zero the loss.
 * (config validation rejects weight > 0 when no pair has equal dims.) FQGAN applies it to the
 * straight-through quantized codes (compute_disentangle_loss in vq_model_dual.py), which the caller passes when
 * quantizer.disentangleOn is 'quantized'; 'pre' passes the normalized pre-quantization codes instead.
 */
export function disentangleLoss(codes: tf.Tensor4D[], weight: number): tf.Scalar {
  if (weight === 0) return tf.scalar(0);
  const terms: tf.Scalar[] = [];
  for (let i = 0; i < codes.length; i++) {
    for (let j = i + 1; j < codes.length; j++) {
      if (codes[i].shape[3] !== codes[j].shape[3]) continue;
      const cos = tf.sum(tf.mul(l2Normalize(codes[i]), l2Normalize(codes[j])), -1);
      terms.push(tf.mean(tf.square(cos)) as tf.Scalar);
    }
  }
  if (terms.length === 0) return tf.scalar(0);
  return tf.mul(tf.div(tf.addN(terms), terms.length), weight) as tf.Scalar;
}
