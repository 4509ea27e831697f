import * as tf from '@tensorflow/tfjs';
import { fanInUniform, type ParamStore } from '../params';

/**
 * y = x @ w + b over the last axis. x: [..., inF], w: [inF, outF], b: [outF] -> [..., outF].
 * Reshapes to 2-D first: tfjs's batched matMul against a 2-D weight has a wrong gradient.
 * Throws when x's last dim is not w's row count.
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const inF = w.shape[0] as number;
  if (x.shape[x.rank - 1] !== inF) throw new Error(`linear: input last dim ${x.shape[x.rank - 1]} != weight rows ${inF}`);
  const lead = x.shape.slice(0, -1);
  let y = tf.matMul(tf.reshape(x, [-1, inF]), w);
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...lead, w.shape[1] as number]);
}

/** A projection over the last axis, x: [..., inF] -> [..., outF] (a linear layer with its weights bound). */
export type Projection = (x: tf.Tensor) => tf.Tensor;

/**
 * Dense / 1x1-conv parameters over a ParamStore: `name/w` [cin, cout] (PyTorch-default fan-in uniform) then
 * `name/b` [cout] (zeros), created in that order.
 */
export function createLinear(store: ParamStore, name: string, cin: number, cout: number): void {
  store.create(`${name}/w`, [cin, cout], fanInUniform(cin));
  store.create(`${name}/b`, [cout], { kind: 'zeros' });
}

/** The layer createLinear registered: x: [..., cin] -> [..., cout] (see linear). */
export function dense<T extends tf.Tensor>(store: ParamStore, name: string, x: T): T {
  return linear(x, store.get(`${name}/w`), store.get(`${name}/b`)) as T;
}

/** The layer createLinear registered under `name`, as a Projection (for selfAttention, gatedMlp, mlp). */
export function denseOf(store: ParamStore, name: string): Projection {
  return (x) => dense(store, name, x);
}
