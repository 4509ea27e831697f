import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { rand, toTensor, kernel, expectClose, live, useTrainingKernels } from './harness';
import type { Arr } from './harness';

useTrainingKernels();

describe('pooling and resize gradients', () => {
  it('MaxPoolGrad on wasm matches cpu, also where whole windows are negative', async () => {
    const before = live();
    const cases: [number[], number, number, 'same' | 'valid'][] = [
      [[2, 6, 6, 3], 2, 2, 'valid'],
      [[2, 7, 7, 2], 3, 2, 'same'],
      [[1, 5, 6, 2], 2, 1, 'valid'],
    ];
    for (const [shape, filterSize, stride, pad] of cases) {
      for (const [lo, hi] of [[-1, 1], [-3, -1]] as const) {
        const input = rand(shape, lo, hi);
        const attrs = { filterSize: [filterSize, filterSize], strides: [stride, stride], pad, dimRoundingMode: undefined };
        await tf.setBackend('cpu');
        const output = tf.tidy(() => {
          const y = tf.maxPool(toTensor(input) as tf.Tensor4D, filterSize, stride, pad);
          return { shape: y.shape, values: Float32Array.from(y.dataSync()), dtype: 'float32' as const };
        });
        const dy = rand(output.shape);
        const ins = { dy, input, output };
        const ref = await kernel('cpu', 'builtin', 'MaxPoolGrad', ins, attrs as unknown as tf.NamedAttrMap);
        expectClose(await kernel('wasm', 'registered', 'MaxPoolGrad', ins, attrs as unknown as tf.NamedAttrMap), ref, `${shape} [${lo},${hi}]`);
      }
    }
    expect(live()).toEqual(before);
  });

  it('ResizeNearestNeighborGrad: hand values for batch 2, and the adjoint identity on both backends', async () => {
    // 2x2 -> 4x4, dy = 0..31 over [2,4,4,1]: each input pixel collects its 2x2 block.
    const images = rand([2, 2, 2, 1]);
    const dy: Arr = { shape: [2, 4, 4, 1], values: Float32Array.from({ length: 32 }, (_, i) => i), dtype: 'float32' };
    const attrs = { alignCorners: false, halfPixelCenters: false };
    for (const be of ['cpu', 'wasm']) {
      const got = await kernel(be, 'registered', 'ResizeNearestNeighborGrad', { images, dy }, attrs);
      expect(Array.from(got.values), be).toEqual([10, 18, 42, 50, 74, 82, 106, 114]);
    }
    // <resize(x), dy> == <x, grad(dy)> for non-integer ratios and every corner/centre mode.
    for (const [alignCorners, halfPixelCenters] of [[false, false], [true, false], [false, true]] as const) {
      const x = rand([2, 3, 4, 2]);
      const g = rand([2, 7, 5, 2]);
      for (const be of ['cpu', 'wasm']) {
        await tf.setBackend(be);
        const [lhs, rhs] = tf.tidy(() => {
          const xt = toTensor(x) as tf.Tensor4D;
          const gt = toTensor(g);
          const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.image.resizeNearestNeighbor(a as tf.Tensor4D, [7, 5], alignCorners, halfPixelCenters), gt)))(xt);
          const y = tf.image.resizeNearestNeighbor(xt, [7, 5], alignCorners, halfPixelCenters);
          return [tf.sum(tf.mul(y, gt)).dataSync()[0]!, tf.sum(tf.mul(xt, grad)).dataSync()[0]!];
        });
        expect(rhs, `${be} align=${alignCorners} hpc=${halfPixelCenters}`).toBeCloseTo(lhs, 4);
      }
    }
    // Without halfPixelCenters the wasm built-in is right: ours (in the heap) equals it bit for bit, 2x and odd ratios.
    for (const [inShape, outHW, alignCorners] of [[[3, 14, 14, 8], [28, 28], false], [[2, 5, 7, 3], [9, 11], true], [[2, 5, 7, 3], [9, 11], false]] as const) {
      const x = rand([...inShape]);
      const g = rand([inShape[0], outHW[0], outHW[1], inShape[3]]);
      const before = live();
      const attrs2 = { alignCorners, halfPixelCenters: false };
      const got = await kernel('wasm', 'registered', 'ResizeNearestNeighborGrad', { images: x, dy: g }, attrs2);
      const ref = await kernel('wasm', 'builtin', 'ResizeNearestNeighborGrad', { images: x, dy: g }, attrs2);
      expect(live()).toEqual(before);
      expect(Buffer.from(got.values.buffer).equals(Buffer.from(ref.values.buffer)), JSON.stringify([inShape, outHW, alignCorners])).toBe(true);
    }
  });
});
