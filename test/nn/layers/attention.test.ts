import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { applyRope, attention, backboneRope, causalMask, mergeHeads, ropeSlice, Rng, selfAttention, splitHeads } from '@factorgen/nn';

beforeAll(async () => {
  await initBackend('cpu');
});

const rand = (n: number, seed: string, scale = 1) => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => r.normal() * scale);
};

/**
 * Float64 reference of multi-head attention on [B, L, C] arrays (row-major): head h = channels h*dh..; query i sees
 * keys j <= past + i when causal; 'mean' averages the heads. Keys/values: t + L positions (past first).
 */
function reference(q: number[], k: number[], v: number[], B: number, L: number, T: number, C: number, heads: number, causal: boolean, merge: 'concat' | 'mean'): number[] {
  const dh = C / heads;
  const past = T - L;
  const outW = merge === 'concat' ? C : dh;
  const y = new Array(B * L * outW).fill(0);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < L; i++) {
        const s: number[] = [];
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let c = 0; c < dh; c++) dot += q[(b * L + i) * C + h * dh + c] * k[(b * T + j) * C + h * dh + c];
          s.push(causal && j > past + i ? -Infinity : dot / Math.sqrt(dh));
        }
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((a, x) => a + x, 0);
        for (let c = 0; c < dh; c++) {
          let o = 0;
          for (let j = 0; j < T; j++) o += (e[j] / z) * v[(b * T + j) * C + h * dh + c];
          if (merge === 'concat') y[(b * L + i) * C + h * dh + c] = o;
          else y[(b * L + i) * dh + c] += o / heads;
        }
      }
  return y;
}

describe('attention', () => {
  it('one head, two positions, by hand: softmax([q.k0, q.k1] / sqrt(2)) weights the values', () => {
    // q0 = [1, 0], q1 = [0, 2]; k0 = [1, 1], k1 = [0, 1]; v0 = [1, 0], v1 = [0, 1]
    const got = tf.tidy(() => {
      const q = tf.tensor3d([[[1, 0], [0, 2]]]);
      const k = tf.tensor3d([[[1, 1], [0, 1]]]);
      const v = tf.tensor3d([[[1, 0], [0, 1]]]);
      return Array.from(attention(q, k, v, { heads: 1 }).y.dataSync());
    });
    // query 0: scores [1, 0]/sqrt2 -> w0 = 1 / (1 + e^{-1/sqrt2}); query 1: scores [2, 2]/sqrt2 -> [0.5, 0.5]
    const w0 = 1 / (1 + Math.exp(-1 / Math.SQRT2));
    const want = [w0, 1 - w0, 0.5, 0.5];
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 6));
  });

  it.each([
    [2, 'none', 'concat'],
    [2, 'causal', 'concat'],
    [4, 'causal', 'mean'],
    [1, 'none', 'mean'],
  ] as const)('%i heads, mask %s, merge %s: equals a float64 reference (B 2, L 5, C 8)', (heads, mask, merge) => {
    const [B, L, C] = [2, 5, 8];
    const q = rand(B * L * C, 'q'), k = rand(B * L * C, 'k'), v = rand(B * L * C, 'v');
    const want = reference(q, k, v, B, L, L, C, heads, mask === 'causal', merge);
    const got = tf.tidy(() => Array.from(attention(tf.tensor3d(q, [B, L, C]), tf.tensor3d(k, [B, L, C]), tf.tensor3d(v, [B, L, C]), { heads, mask, merge }).y.dataSync()));
    expect(got.length).toBe(want.length);
    got.forEach((g, i) => expect(Math.abs(g - want[i]), `element ${i}`).toBeLessThan(2e-6));
  });

  it("scale 'query' and 'scores' agree to float32 rounding", () => {
    const [B, L, C] = [2, 6, 8];
    const [q, k, v] = ['q', 'k', 'v'].map((s) => tf.tensor3d(rand(B * L * C, s, 3), [B, L, C]));
    const [a, b] = tf.tidy(() => (['query', 'scores'] as const).map((scale) => Array.from(attention(q, k, v, { heads: 2, mask: 'causal', scale }).y.dataSync())));
    let maxDiff = 0;
    a.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - b[i]))));
    expect(maxDiff).toBeLessThan(1e-5);
    tf.dispose([q, k, v]);
  });

  it('a causal query does not see later positions: changing the last position changes only its own output', () => {
    const [B, L, C] = [1, 4, 4];
    const x = rand(B * L * C, 'x');
    const y = x.slice();
    for (let c = 0; c < C; c++) y[(L - 1) * C + c] += 1 + c;
    const [a, b] = tf.tidy(() => [x, y].map((d) => { const t = tf.tensor3d(d, [B, L, C]); return Array.from(attention(t, t, t, { heads: 2, mask: 'causal' }).y.dataSync()); }));
    for (let p = 0; p < L; p++) {
      const same = a.slice(p * C, (p + 1) * C).every((u, i) => u === b[p * C + i]);
      expect(same, `position ${p}`).toBe(p !== L - 1);
    }
  });

  it('with a KV cache: a prefix then the rest, and one position at a time, equal the uncached pass (RoPE on); leaks nothing', () => {
    const [B, L, C, heads] = [2, 6, 8, 2];
    const table = backboneRope('2d', 2, 3, C / heads);
    const [q, k, v] = ['cq', 'ck', 'cv'].map((s) => tf.tensor3d(rand(B * L * C, s), [B, L, C]));
    const before = tf.memory().numTensors;
    const rows = (t: tf.Tensor3D, s: number, n: number) => tf.slice(t, [0, s, 0], [B, n, C]) as tf.Tensor3D;
    const run = (s: number, n: number, past: { k: tf.Tensor4D; v: tf.Tensor4D } | null) =>
      attention(rows(q, s, n), rows(k, s, n), rows(v, s, n), { heads, mask: 'causal', scale: 'query', rope: ropeSlice(table, s, n), past });
    const [full, split, steps] = tf.tidy(() => {
      const whole = run(0, L, null);
      const first = run(0, 2, null);
      const rest = run(2, L - 2, first.kv);
      expect(rest.kv.k.shape).toEqual([B, heads, L, C / heads]);
      // step by step
      let past: { k: tf.Tensor4D; v: tf.Tensor4D } | null = null;
      const outs: tf.Tensor3D[] = [];
      for (let t = 0; t < L; t++) {
        const r = run(t, 1, past);
        outs.push(r.y);
        past = r.kv;
      }
      return [whole.y, tf.concat([first.y, rest.y], 1), tf.concat(outs, 1)].map((t) => Array.from(t.dataSync()));
    });
    expect(tf.memory().numTensors).toBe(before);
    // same rows, same keys, same masks: a prefix + rest is the uncached pass bit for bit
    expect(split).toEqual(full);
    // one query at a time has no mask (it sees every cached key); only the summation of exact zeros differs
    steps.forEach((s, i) => expect(Math.abs(s - full[i]), `element ${i}`).toBeLessThan(1e-6));
    tf.dispose([q, k, v]);
  });

  it('selfAttention runs the projections in the order q, k, v, out and applies out to the merged heads', () => {
    const calls: string[] = [];
    const x = tf.tensor3d(rand(12, 'sx'), [1, 3, 4]);
    const id = (name: string) => (t: tf.Tensor) => (calls.push(name), t);
    const before = tf.memory().numTensors;
    const [got, want] = tf.tidy(() => {
      const { y } = selfAttention(x, { q: id('q'), k: id('k'), v: id('v'), out: (t) => (calls.push('out'), tf.mul(t, 2)) }, { heads: 2 });
      return [Array.from(y.dataSync()), Array.from(tf.mul(attention(x, x, x, { heads: 2 }).y, 2).dataSync())];
    });
    expect(calls).toEqual(['q', 'k', 'v', 'out']);
    expect(got).toEqual(want);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describe('heads, masks and RoPE', () => {
  it('splitHeads puts channels h*dh.. in head h; mergeHeads concat inverts it, mean averages the heads', () => {
    const x = tf.tensor3d([[[1, 2, 3, 4], [5, 6, 7, 8]]]); // [1, 2, 4]
    const split = splitHeads(x, 2);
    expect(split.shape).toEqual([1, 2, 2, 2]);
    expect(Array.from(split.dataSync())).toEqual([1, 2, 5, 6, 3, 4, 7, 8]);
    expect(Array.from(mergeHeads(split).dataSync())).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(mergeHeads(split, 'mean').dataSync())).toEqual([2, 3, 6, 7]);
    const one = splitHeads(x, 1);
    expect(one.shape).toEqual([1, 1, 2, 4]);
    expect(Array.from(mergeHeads(one).dataSync())).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(() => splitHeads(x, 3)).toThrow('attention: width 4 not divisible by 3 heads');
    tf.dispose([x, split, one]);
  });

  it('causalMask(past 1, L 2) is 0 where key j <= 1 + i and -1e9 elsewhere', () => {
    const m = causalMask(1, 2);
    expect(m.shape).toEqual([2, 3]);
    expect(Array.from(m.dataSync())).toEqual([0, 0, -1e9, 0, 0, 0]);
    m.dispose();
  });

  it('applyRope rotates each channel pair (j, j + dh/2) by the table angle, by hand', () => {
    // dh 4, one position, angles chosen by hand
    const a = [0.3, -1.1];
    const cos = tf.tensor2d([[Math.cos(a[0]), Math.cos(a[1]), Math.cos(a[0]), Math.cos(a[1])]]);
    const sin = tf.tensor2d([[Math.sin(a[0]), Math.sin(a[1]), Math.sin(a[0]), Math.sin(a[1])]]);
    const x = [1, 2, 3, 4]; // pairs (1, 3) and (2, 4)
    const got = tf.tidy(() => Array.from(applyRope(tf.tensor4d(x, [1, 1, 1, 4]), cos, sin).dataSync()));
    const want = [
      x[0] * Math.cos(a[0]) - x[2] * Math.sin(a[0]),
      x[1] * Math.cos(a[1]) - x[3] * Math.sin(a[1]),
      x[2] * Math.cos(a[0]) + x[0] * Math.sin(a[0]),
      x[3] * Math.cos(a[1]) + x[1] * Math.sin(a[1]),
    ];
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 6));
    tf.dispose([cos, sin]);
  });

  it("backboneRope '1d': position p >= 1 turns pair j by (p - 1) * 10000^(-j/(dh/2)); the class position per classRope", () => {
    const t = backboneRope('1d', 1, 4, 4);
    expect(t.length).toBe(4);
    // position 3 (raster index 2), pair 1 of 2: angle 2 * 10000^(-1/2) = 0.02
    expect(t.cos[3 * 4 + 1]).toBeCloseTo(Math.cos(0.02), 7);
    expect(t.sin[3 * 4 + 3]).toBeCloseTo(Math.sin(0.02), 7);
    expect(t.cos[3 * 4 + 0]).toBeCloseTo(Math.cos(2), 6);
    expect(Array.from(t.cos.subarray(0, 4))).toEqual([1, 1, 1, 1]);
    expect(Array.from(backboneRope('1d', 1, 4, 4, 10000, 'zero').cos.subarray(0, 4))).toEqual([0, 0, 0, 0]);
  });
});
