import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { rand, ints, kernel, live, useTrainingKernels } from './harness';

useTrainingKernels();

describe('Tile (wasm replacement)', () => {
  it('equals the built-in for ranks 0-5, short and long last axes, float32 and int32; leaks nothing', async () => {
    const cases: [number[], number[]][] = [
      [[64, 1, 8, 1], [1, 1, 1, 8]], // GroupNorm's per-channel repeat
      [[2, 1, 3, 1], [1, 5, 1, 4]],
      [[3, 20], [2, 3]], // long rows: block copies
      [[4], [3]],
      [[], []],
      [[2, 3, 1, 2, 2], [2, 1, 3, 1, 2]],
      [[2, 3], [0, 2]], // an empty output
    ];
    for (const [shape, reps] of cases) {
      const x = rand(shape);
      const before = live();
      const got = await kernel('wasm', 'registered', 'Tile', { x }, { reps });
      const ref = await kernel('wasm', 'builtin', 'Tile', { x }, { reps });
      expect(live()).toEqual(before);
      expect(got.shape, JSON.stringify([shape, reps])).toEqual(ref.shape);
      expect(Array.from(got.values), JSON.stringify([shape, reps])).toEqual(Array.from(ref.values));
    }
    const x = ints([2, 2], [1, -2, 3, 4]);
    const got = await kernel('wasm', 'registered', 'Tile', { x }, { reps: [2, 2] });
    expect(Array.from(got.values)).toEqual([1, -2, 1, -2, 3, 4, 3, 4, 1, -2, 1, -2, 3, 4, 3, 4]);
  });
});
