import * as tf from '@tensorflow/tfjs';

/**
 * Gradient of gatherND (tfjs has none): dy scattered (summed on repeats) into params' shape.
 * params: P, indices: [..., k] int32, dy: [..., P[k:]] -> dParams: P.
 */
export const gatherNdGrad: tf.GradConfig = {
  kernelName: 'GatherNd',
  inputsToSave: ['params', 'indices'],
  gradFunc: (dy, saved) => {
    const [params, indices] = saved as [tf.Tensor, tf.Tensor];
    return { params: () => tf.scatterND(indices, dy as tf.Tensor, params.shape) };
  },
};
