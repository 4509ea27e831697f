import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { createGroupNorm, createLayerNorm, groupNorm, l2Normalize, layerNorm, ParamStore, Rng, rmsNorm } from '@factorgen/nn';

const backends = ['wasm', 'cpu'] as const;
beforeAll(async () => {
  for (const b of backends) await initBackend(b);
  await tf.setBackend('cpu');
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

const rand = (n: number, seed: string) => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => r.normal() * 3 + 1);
};

describe('norms, by hand', () => {
  it('layerNorm: (x - mean) / sqrt(var + eps) * gamma + beta over the last axis; parameters gamma then beta', () => {
    const store = new ParamStore(new Rng('ln'));
    createLayerNorm(store, 'n', 3);
    expect([...store.vars.keys()]).toEqual(['n/gamma', 'n/beta']);
    store.get('n/gamma').assign(tf.tensor1d([1, 2, 3]));
    store.get('n/beta').assign(tf.tensor1d([0, 0, 1]));
    const got = tf.tidy(() => Array.from(layerNorm(store, 'n', tf.tensor2d([[1, 2, 3]])).dataSync()));
    const s = 1 / Math.sqrt(2 / 3 + 1e-5); // mean 2, biased variance 2/3
    [-s, 0, 3 * s + 1].forEach((w, i) => expect(got[i]).toBeCloseTo(w, 5));
    store.dispose();
  });

  it('rmsNorm: x / sqrt(mean(x^2) + 1e-6) * weight', () => {
    const got = tf.tidy(() => Array.from(rmsNorm(tf.tensor2d([[3, 4]]), tf.tensor1d([1, 2])).dataSync()));
    const r = Math.sqrt(12.5 + 1e-6);
    expect(got[0]).toBeCloseTo(3 / r, 6);
    expect(got[1]).toBeCloseTo(8 / r, 6);
  });

  it('l2Normalize: [3, 4] -> [0.6, 0.8]; a zero row stays finite', () => {
    const got = tf.tidy(() => Array.from(l2Normalize(tf.tensor2d([[3, 4], [0, 0]])).dataSync()));
    expect(got[0]).toBeCloseTo(0.6, 6);
    expect(got[1]).toBeCloseTo(0.8, 6);
    expect(got.slice(2)).toEqual([0, 0]);
  });

  it('groupNorm: statistics per sample and group over (H, W, C/G), by hand; groups must divide C', () => {
    const store = new ParamStore(new Rng('gn'));
    createGroupNorm(store, 'g', 4);
    // one sample, 1x2 pixels, 4 channels in 2 groups: group 0 = channels 0,1 = {1, 3, 5, 7}; group 1 = {0, 0, 2, 2}
    const x = tf.tensor4d([1, 3, 0, 0, 5, 7, 2, 2], [1, 1, 2, 4]);
    const got = tf.tidy(() => Array.from(groupNorm(store, 'g', x, 2, { eps: 1e-5 }).dataSync()));
    const s0 = 1 / Math.sqrt(5 + 1e-5); // mean 4, variance (9 + 1 + 1 + 9) / 4 = 5
    const s1 = 1 / Math.sqrt(1 + 1e-5); // mean 1, variance 1
    const want = [-3 * s0, -s0, -s1, -s1, s0, 3 * s0, s1, s1];
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 5));
    expect(() => groupNorm(store, 'g', x, 3)).toThrow('groupNorm g: 4 channels not divisible by 3 groups');
    tf.dispose(x);
    store.dispose();
  });
});

/** FeatureNet's GroupNorm + affine as it was written before nn's: one [B,H,W,G,C/G] view, d * d, tfjs's gradients. */
function featureNetGroupNormRef(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const g = tf.reshape(x, [b, h, w, groups, c / groups]);
  const mean = tf.mean(g, [1, 2, 4], true);
  const centred = tf.sub(g, mean);
  const variance = tf.mean(tf.mul(centred, centred), [1, 2, 4], true);
  const normed = tf.reshape(tf.mul(centred, tf.rsqrt(tf.add(variance, 1e-5))), [b, h, w, c]);
  return tf.add(tf.mul(normed, gamma), beta);
}

describe.each(backends)('groupNorm on %s', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
  });

  it("squares 'product' reproduces FeatureNet's own composition bit for bit, values and gradients (x, gamma, beta); leaks nothing", () => {
    const s: [number, number, number, number] = [3, 5, 4, 12];
    const store = new ParamStore(new Rng('gnp'));
    createGroupNorm(store, 'g', 12);
    store.get('g/gamma').assign(tf.tensor1d(rand(12, 'gamma')));
    store.get('g/beta').assign(tf.tensor1d(rand(12, 'beta')));
    const x = tf.tensor4d(rand(3 * 5 * 4 * 12, 'x'), s);
    const w = tf.tensor4d(rand(3 * 5 * 4 * 12, 'w'), s);
    const before = tf.memory().numTensors;
    const vg = (f: (a: tf.Tensor4D, g: tf.Tensor, b: tf.Tensor) => tf.Tensor) => {
      const { value, grads } = tf.valueAndGrads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, g, b), w)))([x, store.get('g/gamma'), store.get('g/beta')]);
      const out = [value, ...grads].map((t) => Array.from(new Uint32Array(Float32Array.from(t.dataSync()).buffer)));
      tf.dispose([value, ...grads]);
      return out;
    };
    // valueAndGrads hands f the very variables it was given, so groupNorm reading them from the store is traced
    const viaStore = (a: tf.Tensor4D) => groupNorm(store, 'g', a, 3, { eps: 1e-5, squares: 'product' });
    const got = vg(viaStore);
    const want = vg((a, g, b) => featureNetGroupNormRef(a, g, b, 3));
    expect(got).toEqual(want);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w]);
    store.dispose();
  });

  it("squares 'square' and 'product' give the same values", () => {
    const store = new ParamStore(new Rng('gnq'));
    createGroupNorm(store, 'g', 8);
    const x = tf.tensor4d(rand(2 * 3 * 3 * 8, 'xq'), [2, 3, 3, 8]);
    const [a, b] = tf.tidy(() => (['square', 'product'] as const).map((squares) => Array.from(groupNorm(store, 'g', x, 4, { squares }).dataSync())));
    expect(a).toEqual(b);
    tf.dispose(x);
    store.dispose();
  });
});
