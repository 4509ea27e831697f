import * as tf from '@tensorflow/tfjs';

/** Comparison and logical kernels with no gradient in tfjs; their outputs are boolean, so the gradient is zero
 * (float32 even for bool inputs: the engine requires float gradients). */
const binary = ['Greater', 'Less', 'LessEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr', 'LogicalXor'];

/**
 * Zero gradients for comparisons (e.g. x reaching tf.where's condition through tf.greater), which otherwise
 * make tf.grads throw "gradient function not found for Greater". a, b: any shapes -> zeros of the same shapes.
 */
export const comparisonGrads: tf.GradConfig[] = [
  ...binary.map(
    (kernelName): tf.GradConfig => ({
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, saved) => {
        const [a, b] = saved as [tf.Tensor, tf.Tensor];
        return { a: () => tf.zeros(a.shape), b: () => tf.zeros(b.shape) };
      },
    }),
  ),
  {
    kernelName: 'LogicalNot',
    inputsToSave: ['x'],
    gradFunc: (_dy, saved) => {
      const [x] = saved as [tf.Tensor];
      return { x: () => tf.zeros(x.shape) };
    },
  },
];
