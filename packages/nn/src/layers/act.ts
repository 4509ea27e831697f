import * as tf from '@tensorflow/tfjs';

/** swish / SiLU (Ramachandran et al. 2017; Elfwing et al. 2018): x * sigmoid(x). Any shape -> same shape. */
export function swish<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * GELU, tanh approximation (Hendrycks & Gimpel 2016): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Any shape ->
 * same shape. tfjs has no erf, so PyTorch's default nn.GELU (erf) is matched only to < 1e-3.
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as T;
}
