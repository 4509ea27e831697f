import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { Rng, gelu } from '@factorgen/nn';
import { ParamStore } from '@factorgen/nn';
import { alignTargetPredict, createAlignTargetHead, fqganInfoNCE } from '@factorgen/tokenizer';
import { configErrors, quantizerDefaults, type TokenizerConfig } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('cpu');
});

describe("FQGAN's one-directional InfoNCE on exp(cos)", () => {
  it('equals -mean_i log(exp(c_ii) / sum_j exp(c_ij)) computed by hand, and gives the teacher no gradient', () => {
    // pred rows e1, e2; teacher rows (2,0) and (1,1) -> normalized (1,0), (1,1)/sqrt2
    const r = Math.SQRT1_2;
    const hand = -0.5 * (Math.log(Math.E / (Math.E + Math.exp(r))) + Math.log(Math.exp(r) / (1 + Math.exp(r))));
    const pred = tf.tensor2d([[3, 0], [0, 0.5]]);
    const teacher = tf.tensor2d([[2, 0], [1, 1]]);
    const got = tf.tidy(() => fqganInfoNCE(pred, teacher).dataSync()[0]);
    expect(got).toBeCloseTo(hand, 6);
    // one-directional: the column direction (teacher picks prediction) is not part of it
    const cols = -0.5 * (Math.log(Math.E / (Math.E + 1)) + Math.log(Math.exp(r) / (Math.exp(r) + Math.exp(r))));
    expect(Math.abs(got - (hand + cols) / 2)).toBeGreaterThan(1e-3);
    const [gp, gt] = tf.tidy(() => tf.grads((p: tf.Tensor, t: tf.Tensor) => fqganInfoNCE(p as tf.Tensor2D, t as tf.Tensor2D))([pred, teacher]).map((g) => Array.from(g.dataSync())));
    expect(gp.some((v) => v !== 0)).toBe(true);
    expect(gt.every((v) => v === 0)).toBe(true);
    tf.dispose([pred, teacher]);
  });
});

/** 4x4 images -> 2x2 grid, two sub-codebooks of dim 2; target: sub-codebook 1, width 4, 1 block, 2 heads. */
const cfg: TokenizerConfig = {
  version: 2, factorize: 'projection', branchBlocks: 1,
  imageSize: 4, channels: 1, baseChannels: 2, channelMult: [1, 2], blocksPerLevel: 1, attention: false, normGroups: 1, latentChannels: 2,
  quantizer: quantizerDefaults('fq', [{ size: 4, dim: 2 }, { size: 4, dim: 2 }]),
  perceptualWeight: 0,
  alignTargets: [{ subCodebook: 1, teacher: 0, teacherDim: 4, weight: 0.5, layers: 1, heads: 2 }],
};

type M = number[][];
const matmul = (a: M, b: M): M => a.map((row) => b[0].map((_v, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
const addRow = (a: M, b: number[]): M => a.map((row) => row.map((v, j) => v + b[j]));
const ln = (a: M, g: number[], b: number[]): M =>
  a.map((row) => {
    const mu = row.reduce((s, v) => s + v, 0) / row.length;
    const va = row.reduce((s, v) => s + (v - mu) ** 2, 0) / row.length;
    return row.map((v, j) => ((v - mu) / Math.sqrt(va + 1e-5)) * g[j] + b[j]);
  });
const geluJs = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const softmaxRow = (r: number[]) => {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe("FQGAN's class-token alignment head", () => {
  it('matches a plain-JS transcription of FeatPredHead (upscale MLP, class token, positions, LN, one 2-head block, LN, token 0)', () => {
    expect(configErrors(cfg)).toEqual([]);
    const store = new ParamStore(new Rng('head'));
    createAlignTargetHead(store, cfg, 0);
    const rng = new Rng('codes');
    const codes = Array.from({ length: 2 * 4 * 2 }, () => rng.normal());
    const got = tf.tidy(() => alignTargetPredict(store, cfg, 0, tf.tensor4d(codes, [2, 2, 2, 2])).arraySync());
    const P = (n: string): M => {
      const t = store.get(`align/t0/${n}`);
      return (t.rank === 1 ? [t.arraySync()] : t.arraySync()) as M;
    };
    const v = (n: string) => P(n)[0];
    for (let b = 0; b < 2; b++) {
      const x0: M = [0, 1, 2, 3].map((p) => codes.slice((b * 4 + p) * 2, (b * 4 + p) * 2 + 2));
      let h = addRow(matmul(addRow(matmul(x0, P('up1/w')), v('up1/b')).map((r) => r.map((u) => Math.max(0, u))), P('up2/w')), v('up2/b'));
      h = [P('cls')[0], ...h].map((row, i) => row.map((u, j) => u + P('pos')[i][j]));
      h = ln(h, v('ln_pre/gamma'), v('ln_pre/beta'));
      const a = ln(h, v('block0/ln1/gamma'), v('block0/ln1/beta'));
      const [q, k, vv] = ['q', 'k', 'v'].map((n) => addRow(matmul(a, P(`block0/${n}/w`)), v(`block0/${n}/b`)));
      const o: M = h.map(() => [0, 0, 0, 0]);
      for (let head = 0; head < 2; head++) {
        const cols = [2 * head, 2 * head + 1];
        for (let i = 0; i < 5; i++) {
          const w = softmaxRow([0, 1, 2, 3, 4].map((j) => cols.reduce((s, c) => s + q[i][c] * k[j][c], 0) / Math.sqrt(2)));
          for (const c of cols) o[i][c] = w.reduce((s, wj, j) => s + wj * vv[j][c], 0);
        }
      }
      h = h.map((row, i) => row.map((u, j) => u + addRow(matmul(o, P('block0/out/w')), v('block0/out/b'))[i][j]));
      const m = addRow(matmul(addRow(matmul(ln(h, v('block0/ln2/gamma'), v('block0/ln2/beta')), P('block0/fc/w')), v('block0/fc/b')).map((r) => r.map(geluJs)), P('block0/proj/w')), v('block0/proj/b'));
      h = h.map((row, i) => row.map((u, j) => u + m[i][j]));
      const out = ln(h, v('ln_post/gamma'), v('ln_post/beta'))[0];
      out.forEach((u, j) => expect(got[b][j]).toBeCloseTo(u, 4));
    }
    store.dispose();
  });

  it('gelu is the tanh approximation', () => {
    const got = tf.tidy(() => Array.from(gelu(tf.tensor1d([-2, -0.5, 0, 1, 3])).dataSync()));
    [-2, -0.5, 0, 1, 3].forEach((x, i) => expect(got[i]).toBeCloseTo(geluJs(x), 6));
  });

  it('config errors name the bad field of a target', () => {
    expect(configErrors({ ...cfg, alignTargets: [{ subCodebook: 2, teacher: 0, teacherDim: 6, weight: 0.5, layers: 1, heads: 4 }] })).toEqual([
      'alignTargets[0].subCodebook must index one of the 2 sub-codebooks (got 2)',
      'alignTargets[0]: teacherDim 6 is not divisible by heads 4',
    ]);
  });
});
