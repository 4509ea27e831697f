import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { live, useTrainingKernels } from './harness';

useTrainingKernels();

describe('Cast (wasm replacement)', () => {
  it('to the same dtype shares the buffer (no copy) and disposes cleanly; other casts are the built-in\'s', async () => {
    await tf.setBackend('wasm');
    const wasm = tf.findBackend('wasm')!;
    const before = live();
    const x = tf.tensor2d([[1.5, -2.25], [0, 3]]);
    const ids = wasm.numDataIds();
    const y = tf.cast(x, 'float32');
    expect(wasm.numDataIds()).toBe(ids); // a second handle on x's buffer
    expect(Array.from(y.dataSync())).toEqual([1.5, -2.25, 0, 3]);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1.5, -2.25, 0, 3]); // still valid after x is gone
    const z = tf.cast(y, 'int32');
    expect(z.dtype).toBe('int32');
    expect(Array.from(z.dataSync())).toEqual([1, -2, 0, 3]);
    tf.dispose([y, z]);
    expect(live()).toEqual(before);
    // the gradient of a product (tfjs casts the saved operand to float32) is unchanged
    const g = tf.tidy(() => Array.from(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a, tf.tensor1d([2, -3]))))(tf.tensor1d([5, 7])).dataSync()));
    expect(g).toEqual([2, -3]);
    expect(live()).toEqual(before);
  });
});
