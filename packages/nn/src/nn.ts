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

/**
 * y = x @ w + b over the last axis. x: [..., inF], w: [inF, outF], b: [outF] -> [..., outF].
 * Reshapes to 2-D first: tfjs's batched matMul against a 2-D weight has a wrong gradient.
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const inF = w.shape[0] as number;
  if (x.shape[x.rank - 1] !== inF) throw new Error(`linear: input last dim ${x.shape[x.rank - 1]} != weight rows ${inF}`);
  const lead = x.shape.slice(0, -1);
  let y = tf.matMul(tf.reshape(x, [-1, inF]), w);
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...lead, w.shape[1] as number]);
}

/** (a - b)^2 with explicit broadcasting (squaredDifference's gradient ignores broadcasting). */
export function squaredDiff(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const d = tf.sub(a, b);
  return tf.mul(d, d);
}
