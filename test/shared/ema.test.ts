import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Ema, EMA_PREFIX, initBackend, preferEma } from '@factorgen/shared';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('Ema', () => {
  it('starts as a copy and follows ema = d*ema + (1-d)*p, by hand for d = 0.9', () => {
    const w = tf.variable(tf.tensor1d([1, 2]));
    const params = new Map([['w', w]]);
    const before = tf.memory().numTensors;
    const ema = new Ema(params, 0.9);
    expect(Array.from(ema.shadow.get('w')!.dataSync())).toEqual([1, 2]);
    tf.tidy(() => w.assign(tf.tensor1d([11, -8])));
    ema.update(params); // 0.9*[1,2] + 0.1*[11,-8] = [2, 1]
    tf.tidy(() => w.assign(tf.tensor1d([2, 1])));
    ema.update(params); // unchanged: [2, 1]
    tf.tidy(() => w.assign(tf.tensor1d([12, 11])));
    ema.update(params); // [2 + 1, 1 + 1] = [3, 2]
    const got = Array.from(ema.shadow.get('w')!.dataSync());
    expect(got[0]).toBeCloseTo(3, 5);
    expect(got[1]).toBeCloseTo(2, 5);
    expect([...ema.tensors().keys()]).toEqual([`${EMA_PREFIX}w`]);
    // restore into a fresh average reproduces it exactly
    const loaded = new Map([[`${EMA_PREFIX}w`, { shape: [2], dtype: 'float32' as const, data: ema.shadow.get('w')!.dataSync() as Float32Array }]]);
    const again = new Ema(params, 0.9);
    expect(again.restore(loaded)).toBe(true);
    expect(Array.from(again.shadow.get('w')!.dataSync())).toEqual(got);
    expect(again.restore(new Map())).toBe(false);
    ema.dispose();
    again.dispose();
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
    expect(() => new Ema(params, 1)).toThrow('Ema: decay must be in [0, 1) (got 1)');
  });

  it('preferEma swaps in the averages and drops the ema/ entries', () => {
    const m = new Map([['a', 1], ['b', 2], [`${EMA_PREFIX}a`, 10]]);
    expect([...preferEma(m)]).toEqual([['a', 10], ['b', 2]]);
    const plain = new Map([['a', 1]]);
    expect(preferEma(plain)).toBe(plain);
  });
});
