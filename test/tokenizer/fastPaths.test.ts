/**
 * Faster formulations of tokenizer layers give the values and gradients of the plain ones they replaced, bit for bit
 * on wasm (the training backend these were written for) and on cpu: GroupNorm's statistics in [B,N,C] x [B,1,C]
 * layouts, attention as batched products instead of per-sample slices, and the entropy loss's codebook gradient as
 * (z^T ds)^T.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { ParamStore, groupNormalize, dense, groupNorm } from '@factorgen/nn';
import { Rng } from '@factorgen/nn';
import { attnBlock, createAttnBlock } from '@factorgen/tokenizer';

const backends = ['wasm', 'cpu'] as const;
beforeAll(async () => {
  for (const b of backends) await initBackend(b);
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

/** Number of positions where a and b differ as float32 bit patterns (so -0 vs +0 and NaNs count too). */
function bitDiffs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  const x = new Uint32Array(Float32Array.from(a).buffer);
  const y = new Uint32Array(Float32Array.from(b).buffer);
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  return n;
}

/** Value of sum(f(xs) * w) and its gradients with respect to xs, read back. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], w: tf.Tensor) {
  const { value, grads } = tf.valueAndGrads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)))(xs);
  const out = { value: value.dataSync().slice(), grads: grads.map((g) => g.dataSync().slice()) };
  tf.dispose([value, ...grads]);
  return out;
}

function expectBitIdentical(got: ReturnType<typeof valueAndGrads>, ref: ReturnType<typeof valueAndGrads>) {
  expect(bitDiffs(got.value, ref.value)).toBe(0);
  expect(got.grads.length).toBe(ref.grads.length);
  got.grads.forEach((g, i) => expect(bitDiffs(g, ref.grads[i]!)).toBe(0));
}

/** The GroupNorm statistics step as layers.groupNorm wrote it before: one [B,H,W,G,C/G] view, tfjs's own gradients. */
function groupNormalizeRef(x: tf.Tensor4D, groups: number, eps: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const xg = tf.reshape(x, [B, H, W, groups, C / groups]);
  const mean = tf.mean(xg, [1, 2, 4], true);
  const d = tf.sub(xg, mean);
  const variance = tf.mean(tf.square(d), [1, 2, 4], true);
  return tf.reshape(tf.mul(d, tf.rsqrt(tf.add(variance, eps))), [B, H, W, C]);
}

/** attnBlock as it was written before: per-sample 2-D products on slices. */
function attnBlockRef(store: ParamStore, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const h = tf.reshape(groupNorm(store, `${name}/norm`, x, groups), [B * H * W, C]);
  const q = dense(store, `${name}/q`, h);
  const k = dense(store, `${name}/k`, h);
  const v = dense(store, `${name}/v`, h);
  const n = H * W;
  const outs: tf.Tensor2D[] = [];
  for (let b = 0; b < B; b++) {
    const qb = tf.slice(q, [b * n, 0], [n, C]);
    const kb = tf.slice(k, [b * n, 0], [n, C]);
    const vb = tf.slice(v, [b * n, 0], [n, C]);
    outs.push(tf.matMul(tf.softmax(tf.mul(tf.matMul(qb, kb, false, true), 1 / Math.sqrt(C))), vb));
  }
  return tf.add(x, tf.reshape(dense(store, `${name}/out`, tf.concat(outs, 0)), [B, H, W, C]));
}

describe.each(backends)('fast paths on %s', (backend) => {
  beforeAll(async () => {
    await tf.setBackend(backend);
  });

  it.each([
    [[4, 7, 7, 48], 8],
    [[3, 6, 5, 24], 8],
    [[2, 3, 4, 6], 2],
    [[2, 2, 2, 4], 1],
  ] as const)('groupNormalize on %j, %i groups: values and gradient bit-identical to the [B,H,W,G,C/G] composition; leaks nothing', (shape, G) => {
    const s = [...shape] as [number, number, number, number];
    const x = tf.add(tf.mul(tf.randomNormal(s, 0, 1, 'float32', 11), 3), 1) as tf.Tensor4D;
    const w = tf.randomNormal(s, 0, 1, 'float32', 12);
    const before = tf.memory().numTensors;
    const [B, H, W, C] = s;
    const got = valueAndGrads((a) => tf.reshape(groupNormalize(tf.reshape(a, [B, H * W, G, C / G]) as tf.Tensor4D, 1e-6), s), [x], w);
    const ref = valueAndGrads((a) => groupNormalizeRef(a as tf.Tensor4D, G, 1e-6), [x], w);
    expect(tf.memory().numTensors).toBe(before);
    expectBitIdentical(got, ref);
    // and it does normalize: each (sample, group) has mean ~0 and variance ~1
    const y = tf.tidy(() => groupNormalize(tf.reshape(x, [B, H * W, G, C / G]) as tf.Tensor4D, 1e-6));
    const m = tf.tidy(() => tf.mean(y, [1, 3]).dataSync().slice());
    const v = tf.tidy(() => tf.mean(tf.square(y), [1, 3]).dataSync().slice());
    for (let i = 0; i < m.length; i++) {
      expect(Math.abs(m[i]!)).toBeLessThan(1e-5);
      expect(v[i]!).toBeCloseTo(1, 4);
    }
    tf.dispose([x, w, y]);
  });

  it('attnBlock: values and gradients (input and every parameter) bit-identical to per-sample 2-D products', () => {
    const store = new ParamStore(new Rng('fast-attn'));
    createAttnBlock(store, 'a', 16);
    // non-zero biases so their gradient paths are exercised with realistic values
    for (const p of ['q', 'k', 'v', 'out']) store.get(`a/${p}/b`).assign(tf.randomNormal([16], 0, 0.1, 'float32', p.charCodeAt(0)));
    const x = tf.randomNormal([5, 3, 4, 16], 0, 1, 'float32', 21) as tf.Tensor4D;
    const w = tf.randomNormal([5, 3, 4, 16], 0, 1, 'float32', 22);
    const names = [...store.vars.keys()];
    const f = (block: typeof attnBlock) => (xx: tf.Tensor, ...ps: tf.Tensor[]) => {
      // the parameters enter as function inputs so tf.grads differentiates them
      const s = new Map(names.map((n, i) => [n, ps[i]!]));
      const view = { get: (n: string) => s.get(n)!, has: (n: string) => s.has(n) } as unknown as ParamStore;
      return block(view, 'a', xx as tf.Tensor4D, 4);
    };
    const params = names.map((n) => store.get(n));
    const before = tf.memory().numTensors;
    const got = valueAndGrads(f(attnBlock), [x, ...params], w);
    const ref = valueAndGrads(f(attnBlockRef), [x, ...params], w);
    expect(tf.memory().numTensors).toBe(before);
    expectBitIdentical(got, ref);
    expect(got.grads.length).toBe(1 + names.length);
    tf.dispose([x, w]);
    store.dispose();
  });

  it('entropy loss codebook gradient: (z^T ds)^T equals ds^T z bit for bit', () => {
    for (const [N, V] of [[300, 256], [3136, 256], [97, 1024]] as const) {
      const ds = tf.randomNormal([N, V], 0, 1, 'float32', N);
      const z = tf.randomNormal([N, 8], 0, 1, 'float32', V);
      const got = tf.tidy(() => tf.transpose(tf.matMul(z, ds, true, false)).dataSync().slice());
      const ref = tf.tidy(() => tf.matMul(ds, z, true, false).dataSync().slice());
      expect(bitDiffs(got, ref)).toBe(0);
      tf.dispose([ds, z]);
    }
  });
});
