import * as tf from '@tensorflow/tfjs';
import { gradientsReleasing } from './gradients';
import { shareHandle } from './shareSaved';

/** A 2-D product a [M, K] x b [K, N] -> [M, N] (tf.matMul without transposes) whose result the recompute keeps. */
export type KeptMatMul = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * The saved product of a [M, K] x b [K, N] put back on the recomputation's tape: value = `product` (shared, not
 * recomputed), gradients = tfjs's BatchMatMul gradient (dy b^T, a^T dy, the same kernels in the same order, so the
 * bits are those of the matMul it stands for).
 */
function replayedMatMul(a: tf.Tensor2D, b: tf.Tensor2D, product: tf.Tensor): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[2] as tf.GradSaveFunc;
    save([args[0] as tf.Tensor, args[1] as tf.Tensor]);
    return {
      value: shareHandle(product),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.matMul(dy as tf.Tensor2D, sb, false, true), tf.matMul(sa, dy as tf.Tensor2D, true, false)];
      },
    };
  });
  return op(a, b) as tf.Tensor2D;
}

/**
 * Selective gradient checkpointing: like recompute(f, inputs, constants), but the products f computes through `mm`
 * are kept from the forward pass instead of recomputed. The backward pass reruns f with `mm` handing back the kept
 * products (in call order), so only the rest of f (norms, activations, attention, ... : cheap in FLOPs next to the
 * projections) runs twice. Memory: the kept products plus one segment's activations at a time; cost: f minus its mm
 * products once more. f must be a pure function of its inputs that calls mm in the same order on every run (replay
 * any random seeds it draws); the values and gradients are those of an unsegmented tape, bit for bit.
 * f: (mm, ...inputs, ...constants) -> one tensor. Without an active tape it is just f (nothing is kept).
 */
export function recomputeKeepingProducts(
  f: (mm: KeptMatMul, ...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  constants: tf.Tensor[] = [],
): tf.Tensor {
  const n = inputs.length;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xs = args.slice(0, -1) as tf.Tensor[];
    const products: tf.Tensor[] = [];
    const value = f((a, b) => {
      const y = tf.matMul(a, b) as tf.Tensor2D;
      products.push(y);
      return y;
    }, ...xs);
    save([...xs, ...products]);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const ins = saved.slice(0, xs.length);
        const kept = saved.slice(xs.length);
        let i = 0;
        const replay: KeptMatMul = (a, b) => {
          const p = kept[i++];
          if (!p) throw new Error('recomputeKeepingProducts: f called mm more often than in the forward pass');
          return replayedMatMul(a, b, p);
        };
        const { value: v, grads } = gradientsReleasing(() => f(replay, ...ins), ins.slice(0, n), dy as tf.Tensor);
        v.dispose();
        if (i !== kept.length) throw new Error(`recomputeKeepingProducts: f called mm ${i} times, ${kept.length} in the forward pass`);
        return ins.map((t, j) => (j < n ? grads[j] : null) ?? tf.zerosLike(t));
      },
    };
  });
  return op(...inputs, ...constants);
}
