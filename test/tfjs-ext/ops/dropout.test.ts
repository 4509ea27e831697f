/**
 * shared's dropout: the counter-based mask (exact values, its definition, its kept fraction) and its gradient.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { dropout, dropoutMask } from '@factorgen/tfjs-ext';
import { initBackend } from '@factorgen/tfjs-ext/node';

beforeAll(async () => {
  await initBackend('cpu');
});

/** The definition, written plainly (unsigned arithmetic): element i kept iff fmix32(i + fmix32(seed)) < keep * 2^32. */
function referenceKept(n: number, rate: number, seed: number): boolean[] {
  const fmix = (x: number) => {
    let h = x >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    return (h ^ (h >>> 16)) >>> 0;
  };
  const base = fmix(seed);
  const threshold = Math.round((1 - rate) * 2 ** 32);
  return Array.from({ length: n }, (_, i) => fmix((base + i) % 2 ** 32) < threshold);
}

describe('dropoutMask', () => {
  it('keeps exactly the elements of its definition, at 1/keep as float32 division gives it', () => {
    const scale = Math.fround(1 / Math.fround(0.75));
    for (const seed of [0, 1, 12345, 2 ** 31 - 2, -7]) {
      const m = dropoutMask(5000, 0.25, seed);
      const ref = referenceKept(5000, 0.25, seed);
      expect(Array.from(m, (v) => v !== 0)).toEqual(ref);
      for (const v of m) expect(v === 0 || v === scale).toBe(true);
    }
  });

  it('keeps about 1 - rate of the elements, the same for a seed and different across seeds', () => {
    const n = 200_000;
    for (const rate of [0.1, 0.5]) {
      const a = dropoutMask(n, rate, 3);
      const kept = a.filter((v) => v !== 0).length / n;
      expect(Math.abs(kept - (1 - rate))).toBeLessThan(0.005);
      expect(dropoutMask(n, rate, 3)).toEqual(a);
      const b = dropoutMask(n, rate, 4);
      const same = a.filter((v, i) => (v !== 0) === (b[i] !== 0)).length / n;
      // Independent masks agree on keep^2 + rate^2 of the elements.
      expect(Math.abs(same - ((1 - rate) ** 2 + rate ** 2))).toBeLessThan(0.005);
    }
  });

  it("kept values are tf.dropout's 1 / keep (float32 division on the backend)", () => {
    for (const rate of [0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 0.9, 0.123456]) {
      const want = tf.tidy(() => tf.div(tf.scalar(1), tf.scalar(1 - rate)).dataSync()[0]);
      expect(dropoutMask(64, rate, 1).find((v) => v !== 0), `rate ${rate}`).toBe(want);
    }
  });

  it('rate 0 keeps everything at 1; rates outside [0, 1) throw', () => {
    expect(Array.from(dropoutMask(4, 0, 9))).toEqual([1, 1, 1, 1]);
    expect(() => dropoutMask(4, 1, 9)).toThrow('dropout: rate must be in [0, 1) (got 1)');
    expect(() => dropoutMask(4, -0.1, 9)).toThrow('dropout: rate must be in [0, 1) (got -0.1)');
  });
});

describe('dropout', () => {
  it('is x times the mask, and its gradient dy times the same mask', () => {
    const before = tf.memory().numTensors;
    const x = tf.tensor2d(Float32Array.from({ length: 60 }, (_, i) => i - 30.5), [6, 10]);
    const mask = dropoutMask(60, 0.3, 42);
    const y = dropout(x, 0.3, 42);
    const xs = x.dataSync();
    expect(Array.from(y.dataSync())).toEqual(Array.from(xs, (v, i) => Math.fround(v * mask[i]!)));
    const dy = tf.tensor2d(Float32Array.from({ length: 60 }, (_, i) => 0.5 + i), [6, 10]);
    const g = tf.grad((t: tf.Tensor) => dropout(t, 0.3, 42))(x, dy);
    expect(Array.from(g.dataSync())).toEqual(Array.from(dy.dataSync(), (v, i) => Math.fround(v * mask[i]!)));
    tf.dispose([x, y, dy, g]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
