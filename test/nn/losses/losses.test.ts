import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { dLossHinge, gLossHinge, infoNCE, softmaxCrossEntropy } from '@factorgen/nn';

beforeAll(async () => {
  await initBackend('cpu');
});

const num = (t: tf.Tensor) => t.dataSync()[0];

describe('losses, by hand', () => {
  it('softmaxCrossEntropy: -mean log softmax at the label', () => {
    const got = tf.tidy(() => num(softmaxCrossEntropy(tf.tensor2d([[0, Math.log(3)], [1, 1]]), tf.tensor1d([1, 0], 'int32'))));
    // row 0: p(1) = 3/4; row 1: p(0) = 1/2
    expect(got).toBeCloseTo((Math.log(4 / 3) + Math.log(2)) / 2, 6);
  });

  it('hinge: d = 0.5 (mean relu(1 - real) + mean relu(1 + fake)), g = -mean(fake)', () => {
    const d = tf.tidy(() => num(dLossHinge(tf.tensor1d([2, 0.5]), tf.tensor1d([-3, 0]))));
    expect(d).toBeCloseTo(0.5 * (0.25 + 0.5), 7);
    expect(tf.tidy(() => num(gLossHinge(tf.tensor2d([[1, 3]]))))).toBeCloseTo(-2, 7);
  });

  // pred rows [1, 0], [0, 1] (already unit), target rows [1, 1] / sqrt2, [0, 1]: cosines c = [[s, 0], [s, 1]], s = 1/sqrt2
  const s = Math.SQRT1_2;
  const pred = () => tf.tensor2d([[1, 0], [0, 2]]);
  const target = () => tf.tensor2d([[3, 3], [0, 5]]);
  const lse = (a: number, b: number) => Math.log(Math.exp(a) + Math.exp(b));

  it("infoNCE 'both' (CLIP): the mean of the row and column cross-entropies of cos / T", () => {
    const T = 0.5;
    const got = tf.tidy(() => num(infoNCE(pred(), target(), T)));
    const c = [[s / T, 0], [s / T, 1 / T]];
    const rows = (lse(c[0][0], c[0][1]) - c[0][0] + lse(c[1][0], c[1][1]) - c[1][1]) / 2;
    const cols = (lse(c[0][0], c[1][0]) - c[0][0] + lse(c[0][1], c[1][1]) - c[1][1]) / 2;
    expect(got).toBeCloseTo((rows + cols) / 2, 6);
  });

  it("infoNCE 'predToTarget' (FQGAN): the row cross-entropies only; the target gets no gradient", () => {
    const got = tf.tidy(() => num(infoNCE(pred(), target(), 1, 'predToTarget')));
    expect(got).toBeCloseTo((lse(s, 0) - s + lse(s, 1) - 1) / 2, 6);
    const [gp, gt] = tf.tidy(() => tf.grads((p: tf.Tensor, t: tf.Tensor) => infoNCE(p as tf.Tensor2D, t as tf.Tensor2D, 1, 'predToTarget'))([pred(), target()]).map((g) => Array.from(g.dataSync())));
    expect(gt).toEqual([0, 0, 0, 0]);
    expect(gp.some((v) => v !== 0)).toBe(true);
    expect(() => tf.tidy(() => infoNCE(pred(), tf.zeros([3, 2]) as tf.Tensor2D, 1))).toThrow('infoNCE: prediction [2,2] and teacher [3,2] shapes differ');
  });
});
