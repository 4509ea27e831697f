import * as tf from '@tensorflow/tfjs';
import { linear } from '../packages/shared/src/nn';
import { Rng } from '../packages/shared/src/rng';

/** The benchmark model's parameters in order: 4 convs (3x3; strides 1,2,2,1) and a linear classifier. */
export const paramShapes: [string, number[]][] = [
  ['conv1/w', [3, 3, 1, 16]],
  ['conv1/b', [16]],
  ['conv2/w', [3, 3, 16, 32]],
  ['conv2/b', [32]],
  ['conv3/w', [3, 3, 32, 64]],
  ['conv3/b', [64]],
  ['conv4/w', [3, 3, 64, 64]],
  ['conv4/b', [64]],
  ['head/w', [64, 10]],
  ['head/b', [10]],
];

const strides = [1, 2, 2, 1];

/** Forward flops per image (multiply-adds x2) of the convs; the head is negligible. */
export const forwardFlopsPerImage = (() => {
  let h = 28;
  let flops = 0;
  for (let i = 0; i < 4; i++) {
    const [kh, kw, ci, co] = paramShapes[2 * i]![1] as [number, number, number, number];
    h = Math.ceil(h / strides[i]!);
    flops += 2 * h * h * co * kh * kw * ci;
  }
  return flops;
})();

/** Seeded initial values (uniform, 1/sqrt(fan-in)), one Float32Array per parameter. */
export function initParams(seed: string): Float32Array[] {
  const rng = new Rng(seed);
  return paramShapes.map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length > 1 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : 0;
    const out = new Float32Array(n);
    if (!name.endsWith('/b')) for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) / Math.sqrt(fanIn);
    return out;
  });
}

/**
 * Mean softmax cross-entropy of the conv net. params: tensors in paramShapes order, x: [B,28,28,1],
 * labels: [B] int32 -> scalar.
 */
export function loss(params: tf.Tensor[], x: tf.Tensor4D, labels: tf.Tensor1D): tf.Scalar {
  let h = x;
  for (let i = 0; i < 4; i++) {
    h = tf.relu(tf.add(tf.conv2d(h, params[2 * i] as tf.Tensor4D, strides[i] as 1 | 2, 'same'), params[2 * i + 1]!)) as tf.Tensor4D;
  }
  const logits = linear(tf.mean(h, [1, 2]), params[8]!, params[9]);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, 10), tf.logSoftmax(logits)), 1))) as tf.Scalar;
}
