import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { ParamStore, l2Normalize } from '@factorgen/nn';
import { Rng } from '@factorgen/nn';
import { codebookLosses, cosineLookup, entropyLoss, gatherRows, straightThrough } from '@factorgen/tokenizer';
import { quantizerDefaults, type TokenizerConfig } from '@factorgen/tokenizer';
import { disentangleLoss } from '@factorgen/tokenizer';
import { createQuantizer, lookupCodes, quantize } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('cpu');
});

const num = (t: tf.Tensor): number => t.dataSync()[0];

describe('cosineLookup', () => {
  it('matches a brute-force argmax of cosine similarity in JS', () => {
    const rng = new Rng('lookup');
    const N = 40, V = 13, d = 5;
    const z = Array.from({ length: N * d }, () => rng.normal());
    const c = Array.from({ length: V * d }, () => rng.normal() * 3);
    const res = tf.tidy(() => {
      const out = cosineLookup(tf.tensor2d(z, [N, d]), tf.tensor2d(c, [V, d]));
      return { idx: Array.from(out.indices.dataSync()), zq: Array.from(out.zq.dataSync()), dtype: out.indices.dtype };
    });
    expect(res.dtype).toBe('int32');
    const norm = (a: number[], i: number) => {
      const row = a.slice(i * d, (i + 1) * d);
      const n = Math.sqrt(row.reduce((s, x) => s + x * x, 0));
      return row.map((x) => x / n);
    };
    for (let n = 0; n < N; n++) {
      const zn = norm(z, n);
      let best = -1, bestCos = -Infinity;
      for (let v = 0; v < V; v++) {
        const cv = norm(c, v);
        const cos = zn.reduce((s, x, j) => s + x * cv[j], 0);
        if (cos > bestCos) [best, bestCos] = [v, cos];
      }
      expect(res.idx[n]).toBe(best);
      const want = norm(c, best);
      for (let j = 0; j < d; j++) expect(res.zq[n * d + j]).toBeCloseTo(want[j], 6);
    }
  });

  it('gathers rows with a gradient to the table only, even when indices come from the tape', () => {
    const table = tf.variable(tf.tensor2d([[1, 2], [3, 4], [5, 6]]), true, 'q-test-table');
    const { value, grads } = tf.variableGrads(() => {
      const idx = tf.argMax(tf.matMul(table, tf.ones([2, 1])), 1).reshape([-1]) as tf.Tensor1D; // [0,0,0]
      const picked = gatherRows(table, tf.concat([idx, tf.tensor1d([2, 2], 'int32')]) as tf.Tensor1D);
      return tf.sum(tf.mul(picked, tf.tensor2d([[1, 1], [1, 1], [1, 1], [2, 2], [3, 3]]))) as tf.Scalar;
    }, [table]);
    // rows gathered: 0,0,0,2,2 weighted 1,1,1,2,3 -> grad row0 = 3, row2 = 5
    expect(Array.from(grads['q-test-table'].dataSync())).toEqual([3, 3, 0, 0, 5, 5]);
    expect(num(value)).toBe(3 * (1 + 2) + 2 * (5 + 6) + 3 * (5 + 6));
    tf.dispose([value, grads['q-test-table'], table]);
  });

  it('straight-through returns zq exactly and passes the gradient to z only', () => {
    const z = tf.variable(tf.tensor1d([0.1, 0.2, 0.3]), true, 'st-z');
    const zq = tf.variable(tf.tensor1d([1, 2, 3]), true, 'st-zq');
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(straightThrough(z, zq), tf.tensor1d([1, 2, 3]))) as tf.Scalar, [z, zq]);
    expect(num(value)).toBe(14);
    expect(Array.from(grads['st-z'].dataSync())).toEqual([1, 2, 3]);
    expect(grads['st-zq'] === undefined || grads['st-zq'].dataSync().every((g) => g === 0)).toBe(true);
    tf.dispose([value, ...Object.values(grads), z, zq]);
  });
});

describe('losses on hand-computed inputs', () => {
  // z = e1, e2; codebook = e1, (0.6, 0.8): cosines [[1, 0.6], [0, 0.8]] -> indices [0, 1]
  const zRows = [[1, 0], [0, 1]];
  const cbRows = [[1, 0], [0.6, 0.8]];

  it('codebook and commitment: mean squared distance between z and its code', () => {
    const out = tf.tidy(() => {
      const look = cosineLookup(tf.tensor2d(zRows), tf.tensor2d(cbRows));
      const l = codebookLosses(look.z, look.zq);
      return [Array.from(look.indices.dataSync()), num(l.codebook), num(l.commitment)] as const;
    });
    expect(out[0]).toEqual([0, 1]);
    // (0 + 0 + 0.6^2 + 0.2^2) / 4 = 0.1
    expect(out[1]).toBeCloseTo(0.1, 6);
    expect(out[2]).toBeCloseTo(0.1, 6);
  });

  it('entropy: mean per-vector entropy minus entropy of the mean assignment', () => {
    const T = 0.5;
    const got = tf.tidy(() => num(entropyLoss(tf.tensor2d([[1, 0.6], [0, 0.8]]), T)));
    const softmax = (a: number[]) => {
      const e = a.map((v) => Math.exp(v / T));
      const s = e[0] + e[1];
      return e.map((v) => v / s);
    };
    const p0 = softmax([1, 0.6]), p1 = softmax([0, 0.8]);
    const H = (p: number[]) => -p.reduce((s, v) => s + v * Math.log(v), 0);
    const avg = [(p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2];
    const Havg = -avg.reduce((s, v) => s + v * Math.log(v + 1e-5), 0);
    expect(got).toBeCloseTo((H(p0) + H(p1)) / 2 - Havg, 5);
  });

  it('disentangle: weight x mean squared cosine, averaged over equal-dim pairs', () => {
    const got = tf.tidy(() => {
      // two positions; code a = (e1, e2), b = ((0.6,0.8), e2) -> cos^2 = 0.36 and 1; c = (-e2, e1): cos(a,c) = 0, 0; cos(b,c)^2 = 0.64, 0
      const a = tf.tensor4d([1, 0, 0, 2], [1, 1, 2, 2]);
      const b = tf.tensor4d([0.6, 0.8, 0, 1], [1, 1, 2, 2]);
      const c = tf.tensor4d([0, -1, 1, 0], [1, 1, 2, 2]);
      const odd = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]); // different dim: skipped
      return [num(disentangleLoss([a, b], 0.1)), num(disentangleLoss([a, b, c, odd], 0.5)), num(disentangleLoss([a, b], 0))];
    });
    expect(got[0]).toBeCloseTo(0.1 * (0.36 + 1) / 2, 6);
    expect(got[1]).toBeCloseTo(0.5 * ((0.36 + 1) / 2 + 0 + (0.64 + 0) / 2) / 3, 6);
    expect(got[2]).toBe(0);
  });

  it('quantize: losses weighted and summed over sub-codebooks, indices [B,h,w,K], lookup reproduces quantized', () => {
    const cfg: TokenizerConfig = {
      version: 2, factorize: 'projection', branchBlocks: 1, alignTargets: [], imageSize: 4, channels: 1, baseChannels: 2, channelMult: [1], blocksPerLevel: 1, attention: false, normGroups: 1,
      latentChannels: 2,
      quantizer: { ...quantizerDefaults('fq', [{ size: 2, dim: 2 }, { size: 2, dim: 2 }]), entropyWeight: 0.3, entropyTemperature: 0.5 },
      perceptualWeight: 0,
    };
    const store = new ParamStore(new Rng('q'));
    createQuantizer(store, cfg);
    const eye = tf.tensor2d([[1, 0], [0, 1]]);
    const swap = tf.tensor2d([[0, 1], [1, 0]]);
    store.get('quant/k0/proj/w').assign(eye);
    store.get('quant/k1/proj/w').assign(swap); // sub-codebook 1 sees the latent with its two channels swapped
    store.get('quant/k0/codebook').assign(tf.tensor2d(cbRows));
    store.get('quant/k1/codebook').assign(tf.tensor2d(cbRows));
    const before = tf.memory().numTensors;
    const out = tf.tidy(() => {
      const q = quantize(store, cfg, tf.tensor4d([1, 0, 0, 1], [1, 1, 2, 2]));
      const again = lookupCodes(store, cfg, q.indices);
      return {
        idx: Array.from(q.indices.dataSync()),
        shape: q.indices.shape,
        cb: num(q.losses.codebook),
        cm: num(q.losses.commitment),
        en: num(q.losses.entropy),
        same: Array.from(again.dataSync()).every((v, i) => v === q.quantized.dataSync()[i]),
      };
    });
    expect(tf.memory().numTensors).toBe(before);
    // k0: z = e1, e2 -> [0, 1]; k1: z = e2, e1 -> cos [[0, 0.8], [1, 0.6]] -> [1, 0]
    expect(out.shape).toEqual([1, 1, 2, 2]);
    expect(out.idx).toEqual([0, 1, 1, 0]);
    expect(out.cb).toBeCloseTo(0.1 + 0.1, 6);
    expect(out.cm).toBeCloseTo(0.25 * (0.1 + 0.1), 6);
    // FQGAN's compute_entropy_loss(-d) at temperature 0.5 (the default entropyLogits 'sq-dist'), by hand:
    // logits_nv = -||z_n - c_v||^2 / T with unit vectors, i.e. (2 cos - 2) / T.
    const fqganEntropy = (cos: number[][], T: number): number => {
      const probs = cos.map((row) => {
        const e = row.map((c) => Math.exp((2 * c - 2) / T));
        const s = e.reduce((a, b) => a + b, 0);
        return e.map((v) => v / s);
      });
      const sample = probs.reduce((acc, p) => acc - p.reduce((a, v) => a + v * Math.log(v), 0), 0) / probs.length;
      const avg = probs[0].map((_v, j) => probs.reduce((a, p) => a + p[j], 0) / probs.length);
      return sample + avg.reduce((a, v) => a + v * Math.log(v + 1e-5), 0);
    };
    const e0 = fqganEntropy([[1, 0.6], [0, 0.8]], 0.5);
    const e1 = fqganEntropy([[0, 0.8], [1, 0.6]], 0.5);
    expect(out.en).toBeCloseTo(0.3 * (e0 + e1), 5);
    // the same loss as 'cosine' logits at half the temperature
    const c0 = tf.tidy(() => num(entropyLoss(tf.tensor2d([[1, 0.6], [0, 0.8]]), 0.25)));
    expect(e0).toBeCloseTo(c0, 5);
    expect(out.same).toBe(true);
    tf.dispose([eye, swap]);
    store.dispose();
  });
});

describe('l2Normalize', () => {
  it('makes rows unit length and keeps zero rows finite', () => {
    const v = tf.tidy(() => Array.from(l2Normalize(tf.tensor2d([[3, 4], [0, 0]])).dataSync()));
    expect(v[0]).toBeCloseTo(0.6, 6);
    expect(v[1]).toBeCloseTo(0.8, 6);
    expect(v.slice(2)).toEqual([0, 0]);
  });
});
