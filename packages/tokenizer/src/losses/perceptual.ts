import * as tf from '@tensorflow/tfjs';
import { stopGradient, l2Normalize } from '@factorgen/nn';
import type { FrozenTeacher } from '../teacher/teacher';

/**
 * LPIPS-like distance without learned channel weights: per layer, unit-normalize every position's channel
 * vector, take the squared difference summed over channels (in [0,4], independent of layer width),
 * average over batch and positions; then average over layers.
 * a, b: matching lists of [B,h,w,c] maps -> scalar.
 */
export function featureDistance(a: tf.Tensor4D[], b: tf.Tensor4D[]): tf.Scalar {
  if (a.length !== b.length || a.length === 0) throw new Error(`featureDistance: ${a.length} vs ${b.length} feature maps`);
  const per = a.map((fa, i) => tf.mean(tf.sum(tf.square(tf.sub(l2Normalize(fa), l2Normalize(b[i]))), -1)));
  return tf.div(tf.addN(per), per.length) as tf.Scalar;
}

/**
 * Perceptual loss through a frozen teacher: featureDistance(teacher(x), teacher(recon)).
 * x's features are constants (stopGradient); recon's carry gradient back to the decoder. The teacher's own
 * variables must be frozen (freezeParams) or left out of the optimizer. x, recon: [B,H,W,C] -> scalar (unweighted).
 */
export function perceptualLoss(teacher: FrozenTeacher, x: tf.Tensor4D, recon: tf.Tensor4D): tf.Scalar {
  const fx = teacher.run(x).features.map((f) => stopGradient(f));
  const fr = teacher.run(recon).features;
  return featureDistance(fx, fr);
}
