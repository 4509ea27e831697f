import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { rng, rand, ints, toTensor, kernel, expectClose, live, useTrainingKernels } from './harness';
import type { Arr } from './harness';

useTrainingKernels();

describe('Slice, SplitV, Unpack (wasm replacements)', () => {
  it('match the cpu built-ins for ranks 1-5, partial and whole dims', async () => {
    const before = live();
    for (let i = 0; i < 12; i++) {
      const rank = 1 + (i % 5);
      const shape = Array.from({ length: rank }, () => 1 + rng.int(5));
      const begin = shape.map((d) => rng.int(d));
      const size = shape.map((d, j) => (rng.next() < 0.3 ? -1 : 1 + rng.int(d - begin[j]!)));
      const x = rand(shape);
      const ref = await kernel('cpu', 'registered', 'Slice', { x }, { begin, size });
      expectClose(await kernel('wasm', 'registered', 'Slice', { x }, { begin, size }), ref, `slice ${shape} ${begin} ${size}`);
    }
    const ints32: Arr = ints([2, 3, 4], Array.from({ length: 24 }, (_, i) => i * 7 - 50));
    expectClose(await kernel('wasm', 'registered', 'Slice', { x: ints32 }, { begin: [1, 1, 0], size: [1, 2, 3] }), { shape: [1, 2, 3], values: Float32Array.from([62, 69, 76, 90, 97, 104]) }, 'int32 slice');
    for (const [shape, split, axis] of [[[4, 6, 2], [1, 3, 2], 1], [[6, 3], 3, 0], [[2, 3, 5], [2, -1], -1]] as [number[], number | number[], number][]) {
      const x = rand(shape);
      await tf.setBackend('cpu');
      const want = tf.tidy(() => tf.split(toTensor(x), split, axis).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
      await tf.setBackend('wasm');
      const got = tf.tidy(() => tf.split(toTensor(x), split, axis).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
      expect(got.length).toBe(want.length);
      got.forEach((g, j) => expectClose(g, want[j]!, `split ${shape} part ${j}`));
    }
    for (const [shape, axis] of [[[3, 4, 2], 0], [[3, 4, 2], 1], [[3, 4, 2], 2], [[5], 0]] as [number[], number][]) {
      const x = rand(shape);
      await tf.setBackend('cpu');
      const want = tf.tidy(() => tf.unstack(toTensor(x), axis).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
      await tf.setBackend('wasm');
      const got = tf.tidy(() => tf.unstack(toTensor(x), axis).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
      got.forEach((g, j) => expectClose(g, want[j]!, `unstack ${shape} axis ${axis} part ${j}`));
    }
    expect(live()).toEqual(before);
  });
});
