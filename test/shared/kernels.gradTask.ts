import * as tf from '@tensorflow/tfjs';
import { linear } from '../../packages/shared/src/nn';
import { gradsAt, type GradTask } from '../../packages/shared/src/parallel/gradPool';

/** Fixture for the GradPool test: softmax regression, x: [n, inDim] -> logits [n, classes]. */
export type TinyInit = { inDim: number; classes: number };
export type TinyBatch = { x: Float32Array; labels: Int32Array };

export function createGradTask(init: TinyInit): GradTask<TinyBatch> {
  const w = tf.variable(tf.zeros([init.inDim, init.classes]), true, 'tiny/w');
  const b = tf.variable(tf.zeros([init.classes]), true, 'tiny/b');
  return {
    computeGrads: async (weights, batch) => {
      const n = batch.labels.length;
      if (batch.x.length !== n * init.inDim) throw new Error(`batch: x has ${batch.x.length} values for ${n} rows`);
      const loss = () =>
        tf.tidy(() => {
          const logits = linear(tf.tensor2d(batch.x, [n, init.inDim]), w, b);
          return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(tf.tensor1d(batch.labels, 'int32'), init.classes), tf.logSoftmax(logits)), 1))) as tf.Scalar;
        });
      return { ...(await gradsAt([w, b], weights, loss)), size: n };
    },
  };
}
