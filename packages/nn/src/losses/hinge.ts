import * as tf from '@tensorflow/tfjs';

/**
 * Discriminator hinge loss (Lim & Ye 2017; taming-transformers' hinge_d_loss): 0.5 * (mean(relu(1 - real)) +
 * mean(relu(1 + fake))). realLogits, fakeLogits: any shapes -> scalar.
 */
export function dLossHinge(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  const real = tf.mean(tf.relu(tf.sub(1, realLogits)));
  const fake = tf.mean(tf.relu(tf.add(1, fakeLogits)));
  return tf.mul(tf.add(real, fake), 0.5) as tf.Scalar;
}

/** Generator hinge loss (taming-transformers): -mean(fake). fakeLogits: any shape -> scalar. */
export function gLossHinge(fakeLogits: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(fakeLogits)) as tf.Scalar;
}
