import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { Rng } from '@factorgen/nn';
import { heapColumnSumKernel } from '@factorgen/tfjs-ext/simd/heapColumnSum';
import type { WasmBackend } from '@factorgen/tfjs-ext/kernels/wasm/wasmBackend';
import { kernel, live, useTrainingKernels } from './harness';

useTrainingKernels();

describe('Sum (wasm replacement)', () => {
  it('is bit-identical to the built-in over leading axes (our column-sum kernel in the heap) and others (passed through); keepDims; leaks nothing', async () => {
    const rng = new Rng('sum');
    const cases: [number[], number | number[], boolean][] = [
      [[64, 28, 28, 24], [0, 1, 2], false],
      [[64, 7, 7, 48], [0, 1, 2], true],
      [[64, 14, 14, 64], [0, 1, 2], false],
      [[300, 71], 0, false], // 32 + 32 + 4 + 3 columns: every path of the kernel
      [[3136, 256], 0, false],
      [[64, 50, 128], [0, 1], false],
      [[64, 50, 128], [1, 0], false], // out of order: the built-in (which sums axis 0 fastest then)
      [[300, 1], 0, false],
      [[257, 3], [-2], false],
      [[1000, 17], 0, true],
      [[40, 9, 5], [0, 1], false], // below sumMinRows: the built-in
      [[16, 33, 7], [1, 2], false], // trailing axes: the built-in
      [[70, 9, 5], 1, false], // a middle axis: the built-in
      [[300, 20], [0, 1], false], // all axes: the built-in
    ];
    await tf.setBackend('wasm');
    expect(heapColumnSumKernel(tf.backend() as WasmBackend)).not.toBeNull();
    for (const [shape, axis, keepDims] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      // values of mixed magnitude and sign, exact zeros and a -0, so summation order would show in the bits
      const v = Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 0 : i % 89 === 0 ? -0 : rng.normal() * 10 ** ((i % 7) - 3)));
      const x = { shape, values: v, dtype: 'float32' as const };
      const before = live();
      const got = await kernel('wasm', 'registered', 'Sum', { x }, { axis, keepDims });
      const ref = await kernel('wasm', 'builtin', 'Sum', { x }, { axis, keepDims });
      expect(live()).toEqual(before);
      expect(got.shape, JSON.stringify([shape, axis, keepDims])).toEqual(ref.shape);
      expect(Buffer.from(got.values.buffer).equals(Buffer.from(ref.values.buffer)), JSON.stringify([shape, axis])).toBe(true);
    }
    // int32 goes to the built-in too
    await tf.setBackend('wasm');
    expect(tf.tidy(() => Array.from(tf.sum(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32'), 0).dataSync()))).toEqual([9, 12]);
  });
});
