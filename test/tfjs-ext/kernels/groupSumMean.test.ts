import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { Rng } from '@factorgen/nn';
import { heapGroupSumKernel } from '@factorgen/tfjs-ext/simd/heapGroupSum';
import type { WasmBackend } from '@factorgen/tfjs-ext/kernels/wasm/wasmBackend';
import { kernel, live, useTrainingKernels } from './harness';

useTrainingKernels();

describe('Sum and Mean over axes [1, 3] (wasm replacements, GroupNorm statistics)', () => {
  it('are bit-identical to the built-ins (which transpose first), with and without keepDims; other axes pass through; leak nothing', async () => {
    const rng = new Rng('group-sum');
    const cases: [number[], number[]][] = [
      [[64, 784, 8, 4], [1, 3]],
      [[4, 49, 8, 8], [1, 3]],
      [[3, 10, 6, 5], [1, 3]], // 4 + 2 groups: both paths of the kernel
      [[2, 7, 3, 1], [1, 3]],
      [[2, 7, 1, 9], [1, 3]],
      [[3, 10, 6, 5], [3, 1]], // out of order: the built-in
      [[3, 10, 6, 5], [1, 2]], // other axes: the built-in
    ];
    await tf.setBackend('wasm');
    expect(heapGroupSumKernel(tf.backend() as WasmBackend)).not.toBeNull();
    for (const [shape, axis] of cases) {
      for (const name of ['Sum', 'Mean']) {
        for (const keepDims of [true, false]) {
          const n = shape.reduce((a, b) => a * b, 1);
          // mixed magnitudes and signs, zeros and a -0: the summation order shows in the bits
          const v = Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 0 : i % 89 === 0 ? -0 : rng.normal() * 10 ** ((i % 7) - 3)));
          const x = { shape, values: v, dtype: 'float32' as const };
          const before = live();
          const got = await kernel('wasm', 'registered', name, { x }, { axis, keepDims });
          const ref = await kernel('wasm', 'builtin', name, { x }, { axis, keepDims });
          expect(live()).toEqual(before);
          const at = JSON.stringify([name, shape, axis, keepDims]);
          expect(got.shape, at).toEqual(ref.shape);
          expect(Buffer.from(got.values.buffer).equals(Buffer.from(ref.values.buffer)), at).toBe(true);
        }
      }
    }
  });
});
