import * as tf from '@tensorflow/tfjs';
import { gradsAt, type GradTask } from '../packages/shared/src/parallel/gradPool';
import { loss, paramShapes } from './dataParallelModel';

/** One shard of the benchmark batch: images [batch,28,28,1] flattened, and labels. */
export type Shard = { x: Float32Array; batch: number; labels: Int32Array };

/**
 * GradPool task module of the data-parallel benchmark (also used in-process for the main-thread baseline):
 * the conv net's variables, and its gradients at given weights on one shard.
 */
export function createGradTask(): GradTask<Shard> {
  const vars = paramShapes.map(([name, shape]) => tf.variable(tf.zeros(shape), true, `bench/${name}`));
  return {
    computeGrads: async (weights, shard) => ({
      ...(await gradsAt(vars, weights, () => tf.tidy(() => loss(vars, tf.tensor4d(shard.x, [shard.batch, 28, 28, 1]), tf.tensor1d(shard.labels, 'int32'))))),
      size: shard.batch,
    }),
  };
}
