import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { rng, rand, ints, kernel, expectClose, live, useTrainingKernels } from './harness';
import type { Arr } from './harness';

useTrainingKernels();

describe('UnsortedSegmentSum', () => {
  it('matches the cpu built-in, incl. repeated, unused and out-of-range ids and 2-D ids', async () => {
    const before = live();
    const cases: [Arr, Arr, number][] = [
      [rand([6, 3]), ints([6], [0, 2, 2, 4, 0, 2]), 5],
      [rand([5, 2, 3]), ints([5], [1, -1, 3, 7, 1]), 4], // -1 and 7 are dropped
      [rand([7]), ints([7], [3, 3, 3, 0, 1, 1, 2]), 4],
    ];
    for (const [x, segmentIds, numSegments] of cases) {
      const ref = await kernel('cpu', 'builtin', 'UnsortedSegmentSum', { x, segmentIds }, { numSegments });
      for (const be of ['wasm', 'cpu']) {
        expectClose(await kernel(be, 'registered', 'UnsortedSegmentSum', { x, segmentIds }, { numSegments }), ref, `${be} ${x.shape}`);
      }
    }
    expect(live()).toEqual(before);
  });

  it('sums into the right rows for a codebook-sized problem and for 2-D ids (hand loop reference)', async () => {
    // The cpu built-in takes only 1-D ids and loops over segments, so these use a plain loop as reference.
    const cases: [number[], number, number][] = [
      [[3000], 1024, 32],
      [[4, 5], 7, 3],
    ];
    for (const [idsShape, vocab, dim] of cases) {
      const rows = idsShape.reduce((a, b) => a * b, 1);
      const x = rand([...idsShape, dim]);
      const ids = ints(idsShape, Array.from({ length: rows }, () => rng.int(vocab)));
      const want = new Float32Array(vocab * dim);
      for (let i = 0; i < rows; i++) for (let d = 0; d < dim; d++) want[ids.values[i]! * dim + d] += x.values[i * dim + d]!;
      for (const be of ['wasm', 'cpu']) {
        const got = await kernel(be, 'registered', 'UnsortedSegmentSum', { x, segmentIds: ids }, { numSegments: vocab });
        expectClose(got, { shape: [vocab, dim], values: want }, `${be} ${idsShape}`);
      }
    }
  });
});
