import * as tf from '@tensorflow/tfjs';

/**
 * Identity forward, zero gradient. tfjs has no public stopGradient; customGrad gives one.
 * x: any shape -> same shape.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((a) => {
    return { value: (a as tf.Tensor).clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
  });
  return f(x) as T;
}

/** (a - b)^2 with explicit broadcasting (squaredDifference's gradient ignores broadcasting). */
export function squaredDiff(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const d = tf.sub(a, b);
  return tf.mul(d, d);
}
