import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Ema, EMA_OPTIONS_NEW, EMA_PREFIX, emaDecayAt, emaOptionsOf, preferEma } from '@factorgen/nn';
import { initBackend } from '@factorgen/tfjs-ext/node';

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

  it('warm-up: update n uses min(d, (1+n)/(10+n)); by hand for d = 0.3, the weights 1, 2, 3, 4, 5 from an average of 0', () => {
    // decays 1/10, 2/11, 3/12, then capped at 0.3 (4/13 > 0.3)
    expect([0, 1, 2, 3, 4].map((n) => emaDecayAt(0.3, n, true))).toEqual([0.1, 2 / 11, 0.25, 0.3, 0.3]);
    expect(emaDecayAt(0.3, 0, false)).toBe(0.3);
    const w = tf.variable(tf.scalar(0));
    const params = new Map([['w', w]]);
    const warm = new Ema(params, 0.3, true);
    const plain = new Ema(params, 0.3);
    const got: number[][] = [];
    for (let n = 0; n < 5; n++) {
      tf.tidy(() => w.assign(tf.scalar(n + 1)));
      warm.update(params, n);
      plain.update(params, n);
      got.push([warm.shadow.get('w')!.dataSync()[0], plain.shadow.get('w')!.dataSync()[0]]);
    }
    // warm: 0.9*1 = 0.9; 2/11*0.9 + 9/11*2 = 1.8; 0.25*1.8 + 0.75*3 = 2.7; 0.3*2.7 + 0.7*4 = 3.61; 0.3*3.61 + 0.7*5 = 4.583
    // plain (d = 0.3 throughout): 0.7; 0.21 + 1.4 = 1.61; 0.483 + 2.1 = 2.583; 0.7749 + 2.8 = 3.5749; 1.07247 + 3.5 = 4.57247
    const want = [[0.9, 0.7], [1.8, 1.61], [2.7, 2.583], [3.61, 3.5749], [4.583, 4.57247]];
    got.forEach((pair, i) => pair.forEach((v, j) => expect(v, `update ${i}, ${j === 0 ? 'warm' : 'plain'}`).toBeCloseTo(want[i][j], 5)));
    warm.dispose();
    plain.dispose();
    w.dispose();
  });

  it('copyRows sets the chosen rows of an average to the parameter, bit for bit, and leaves the rest', () => {
    const cb = tf.variable(tf.tensor2d([[1, 2], [3, 4], [5, 6]]));
    const params = new Map([['cb', cb]]);
    const ema = new Ema(params, 0.9);
    tf.tidy(() => cb.assign(tf.tensor2d([[10, 20], [30, 40], [50, 60]])));
    ema.copyRows(params, 'cb', [0, 2]);
    expect(Array.from(ema.shadow.get('cb')!.dataSync())).toEqual([10, 20, 3, 4, 50, 60]);
    expect(() => ema.copyRows(params, 'nope', [0])).toThrow('Ema.copyRows: nope is not an averaged 2-D parameter');
    ema.dispose();
    cb.dispose();
  });

  it('new runs get warm-up and restart following; a resumed run keeps what its checkpoint records (nothing: neither)', () => {
    expect(emaOptionsOf(null)).toEqual(EMA_OPTIONS_NEW);
    expect(EMA_OPTIONS_NEW).toEqual({ warmup: true, followRestarts: true });
    expect(emaOptionsOf(null, { warmup: false })).toEqual({ warmup: false, followRestarts: true });
    expect(emaOptionsOf(null, { warmup: undefined, followRestarts: undefined })).toEqual(EMA_OPTIONS_NEW);
    expect(emaOptionsOf({ train: { ema: 0.995 } })).toEqual({ warmup: false, followRestarts: false });
    expect(emaOptionsOf({}, { warmup: true })).toEqual({ warmup: false, followRestarts: false });
    expect(emaOptionsOf({ train: { ema: 0.995, emaWarmup: true, emaFollowRestarts: true } })).toEqual({ warmup: true, followRestarts: true });
  });

  it('preferEma swaps in the averages and drops the ema/ entries', () => {
    const m = new Map([['a', 1], ['b', 2], [`${EMA_PREFIX}a`, 10]]);
    expect([...preferEma(m)]).toEqual([['a', 10], ['b', 2]]);
    const plain = new Map([['a', 1]]);
    expect(preferEma(plain)).toBe(plain);
  });
});
