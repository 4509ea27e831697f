import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { rand, toTensor, live, useTrainingKernels } from '../kernels/harness';

useTrainingKernels();

describe('gradients tfjs lacks', () => {
  it('stridedSlice: hand values, and the adjoint identity with masks and negative strides', async () => {
    await tf.setBackend('wasm');
    const before = live();
    const g = tf.tidy(() =>
      Array.from(tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.stridedSlice(x, [1, 0], [4, 5], [2, 2]), tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]))))(tf.zeros([4, 5])).dataSync()),
    );
    expect(g).toEqual([0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 4, 0, 5, 0, 6]);
    const slices: [number[], number[], number[], number, number, number][] = [
      [[0, 1, 0], [3, 4, 2], [1, 2, 1], 0, 0, 0],
      [[2, 0, 0], [0, 4, 2], [-1, 1, 1], 0, 0, 0],
      [[1, 0, 0], [0, 0, 0], [2, 3, 1], 0b011, 0b011, 0],
      [[1, 0, 0], [3, 4, 2], [1, 1, 1], 0, 0, 0],
      [[2, 0, 0], [2, 4, 2], [1, 1, 1], 0, 0, 0], // empty slice: zero gradient
      [[1, 0, 1], [2, 4, 2], [1, 1, 1], 0, 0, 0b101],
    ];
    for (const [begin, end, strides, beginMask, endMask, shrinkAxisMask] of slices) {
      const [lhs, rhs] = tf.tidy(() => {
        const x = toTensor(rand([3, 4, 2]));
        const f = (a: tf.Tensor) => tf.stridedSlice(a, begin, end, strides, beginMask, endMask, 0, 0, shrinkAxisMask);
        const dy = toTensor(rand(f(x).shape));
        const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), dy)))(x);
        return [tf.sum(tf.mul(f(x), dy)).dataSync()[0]!, tf.sum(tf.mul(x, grad)).dataSync()[0]!];
      });
      expect(rhs, JSON.stringify([begin, end, strides])).toBeCloseTo(lhs, 4);
    }
    expect(live()).toEqual(before);
  });

  it('depthToSpace: its gradient is the inverse rearrangement', async () => {
    await tf.setBackend('wasm');
    const before = live();
    tf.tidy(() => {
      const x = toTensor(rand([2, 2, 3, 8]));
      const dy = toTensor(rand([2, 4, 6, 2]));
      const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.depthToSpace(a as tf.Tensor4D, 2), dy)))(x);
      // depthToSpace is a permutation, so its gradient must map dy back exactly: depthToSpace(grad) == dy.
      expect(Array.from(tf.depthToSpace(grad as tf.Tensor4D, 2).dataSync())).toEqual(Array.from(dy.dataSync()));
    });
    expect(live()).toEqual(before);
  });

  it('gatherND sums repeated indices; comparisons pass zero gradient', async () => {
    await tf.setBackend('wasm');
    const before = live();
    tf.tidy(() => {
      const params = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
      const indices = tf.tensor2d([2, 0, 0, 1, 2, 0], [3, 2], 'int32');
      const g = tf.grad((p: tf.Tensor) => tf.sum(tf.mul(tf.gatherND(p, indices), tf.tensor1d([1, 10, 100]))))(params);
      expect(Array.from(g.dataSync())).toEqual([0, 10, 0, 0, 101, 0]);
      const x = tf.tensor1d([-2, -0.5, 0.5, 3]);
      const gw = tf.grad((a: tf.Tensor) => tf.sum(tf.where(tf.logicalAnd(tf.greater(a, 0), tf.less(a, 1)), tf.mul(a, 3), tf.zerosLike(a))))(x);
      expect(Array.from(gw.dataSync())).toEqual([0, 0, 3, 0]);
    });
    expect(live()).toEqual(before);
  });
});
