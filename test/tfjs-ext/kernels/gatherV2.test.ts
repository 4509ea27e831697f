/**
 * The wasm GatherV2 replacement (packages/tfjs-ext/src/kernels/gatherV2.ts): the same values as the cpu built-in for
 * embedding lookups (axis 0, float32 and int32 tables, 1-D and 2-D indices, repeats), and the wasm built-in's
 * behaviour where it passes through (other axes, batch dims, out-of-range indices). No leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { Rng } from '@factorgen/nn';
import { builtinKernel } from '@factorgen/tfjs-ext';

beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm');
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

type Case = { x: { shape: number[]; values: number[]; dtype: 'float32' | 'int32' }; idx: { shape: number[]; values: number[] }; axis: number; batchDims?: number };

function gatherOn(backend: string, c: Case): { shape: number[]; values: number[] } {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor(c.x.values, c.x.shape, c.x.dtype);
    const idx = tf.tensor(c.idx.values, c.idx.shape, 'int32');
    const y = tf.gather(x, idx, c.axis, c.batchDims ?? 0);
    return { shape: y.shape, values: Array.from(y.dataSync()) };
  });
}

/** The wasm result with the built-in kernel registered instead of ours. */
function gatherBuiltin(c: Case): { shape: number[]; values: number[] } | Error {
  const ours = tf.getKernel('GatherV2', 'wasm')!;
  const builtin = builtinKernel('GatherV2', 'wasm')!;
  tf.unregisterKernel('GatherV2', 'wasm');
  tf.registerKernel(builtin);
  try {
    return gatherOn('wasm', c);
  } catch (e) {
    return e as Error;
  } finally {
    tf.unregisterKernel('GatherV2', 'wasm');
    tf.registerKernel(ours);
  }
}

const rng = new Rng('gatherV2');
const table = (rows: number, cols: number, dtype: 'float32' | 'int32' = 'float32') => ({
  shape: [rows, cols],
  values: Array.from({ length: rows * cols }, () => (dtype === 'int32' ? rng.int(1000) - 500 : Math.fround(rng.next() * 2 - 1))),
  dtype,
});
const ids = (shape: number[], rows: number) => ({ shape, values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(rows)) });

describe('GatherV2 on wasm', () => {
  it('is the registered kernel and equals the cpu built-in on embedding lookups', () => {
    expect(builtinKernel('GatherV2', 'wasm')?.kernelName).toBe('GatherV2');
    expect(tf.getKernel('GatherV2', 'wasm')).not.toBe(builtinKernel('GatherV2', 'wasm'));
    const before = tf.memory().numTensors;
    const cases: Case[] = [
      { x: table(256, 96), idx: ids([64, 48], 256), axis: 0 },
      { x: table(256, 192), idx: ids([3136], 256), axis: 0 },
      { x: table(5, 3, 'int32'), idx: { shape: [2, 3], values: [4, 4, 0, 1, 4, 2] }, axis: 0 },
      { x: { shape: [4, 2, 3], values: Array.from({ length: 24 }, (_, i) => i - 7.5), dtype: 'float32' }, idx: { shape: [3], values: [3, 0, 3] }, axis: 0 },
      { x: table(7, 1), idx: { shape: [0], values: [] }, axis: 0 },
    ];
    for (const c of cases) expect(gatherOn('wasm', c), `${c.x.shape} by ${c.idx.shape}`).toEqual(gatherOn('cpu', c));
    tf.setBackend('wasm');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('passes other axes, batch dims and out-of-range indices to the built-in', () => {
    const cases: Case[] = [
      { x: table(6, 5), idx: ids([4], 5), axis: 1 },
      { x: { shape: [2, 3, 4], values: Array.from({ length: 24 }, (_, i) => i), dtype: 'float32' }, idx: { shape: [2, 2], values: [2, 0, 1, 1] }, axis: 1, batchDims: 1 },
      { x: table(4, 3), idx: { shape: [2], values: [1, 4] }, axis: 0 },
      { x: table(4, 3), idx: { shape: [2], values: [-1, 2] }, axis: 0 },
    ];
    for (const c of cases) {
      const want = gatherBuiltin(c);
      if (want instanceof Error) expect(() => gatherOn('wasm', c)).toThrow(want.message);
      else expect(gatherOn('wasm', c), `${c.x.shape} axis ${c.axis} ids ${c.idx.values}`).toEqual(want);
    }
  });
});
