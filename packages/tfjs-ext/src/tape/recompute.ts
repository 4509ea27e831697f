import * as tf from '@tensorflow/tfjs';
import { gradientsReleasing } from './gradients';

/**
 * Gradient checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost", arXiv:1604.06174):
 * y = f(...inputs) where the tape keeps only `inputs` (shared, not copied); the backward pass runs f again on them
 * under its own tape and back-propagates dy through that. Memory: one segment's activations at a time instead of all
 * of them; cost: one more forward pass of f. f must be a pure function of its inputs (replay any random seeds it
 * draws), so the recomputed activations, and the gradients, are the ones an unsegmented tape gives, bit for bit.
 * inputs: float32 tensors (variables included) that get gradients; constants: tensors f reads but that get none (a
 * tensor f only closes over would be disposed by the forward pass's tidy before the backward pass reruns f).
 * f: (...inputs, ...constants) -> one tensor. Without an active tape it is just f.
 */
export function recompute(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], constants: tf.Tensor[] = []): tf.Tensor {
  const n = inputs.length;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xs = args.slice(0, -1) as tf.Tensor[];
    save(xs);
    return {
      value: f(...xs),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const { value, grads } = gradientsReleasing(() => f(...saved), saved.slice(0, n), dy as tf.Tensor);
        value.dispose();
        return saved.map((t, i) => (i < n ? grads[i] : null) ?? tf.zerosLike(t));
      },
    };
  });
  return op(...inputs, ...constants);
}
