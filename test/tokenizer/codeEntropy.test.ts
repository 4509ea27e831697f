/**
 * The fused codebook-usage entropy loss (packages/tokenizer/src/quant/entropy.ts on the SIMD128 kernel
 * packages/tfjs-ext/src/kernels/codeEntropy.wat) against the formula: a float64 JS evaluation with finite-difference
 * gradients on hand-checkable cases, and tfjs's autodiff of entropyLoss and the chunked tfjs route on random ones, on
 * the cpu and wasm backends. (The committed binary is checked against the .wat in smallBatchMatMul.test.ts.)
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { Rng, l2Normalize } from '@factorgen/nn';
import { codeEntropyBackward, codeEntropyForward } from '@factorgen/tfjs-ext';
import { codeEntropyLossChunked, entropyLoss } from '@factorgen/tokenizer';
import { fusedCodeEntropyLoss } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('wasm');
  await initBackend('cpu');
});

/** mean_n H(softmax(z_n . c / T)) - H(mean_n softmax(...)) in float64 (eps 1e-5 inside the second log). */
function lossF64(z: number[][], c: number[][], T: number): number {
  const P = z.map((zn) => {
    const a = c.map((cj) => cj.reduce((s, v, k) => s + v * zn[k]!, 0) / T);
    const m = Math.max(...a);
    const e = a.map((v) => Math.exp(v - m));
    const s = e.reduce((x, y) => x + y, 0);
    return e.map((v) => v / s);
  });
  const H = (p: number[], eps: number) => -p.reduce((s, v) => s + (v > 0 ? v * Math.log(v + eps) : 0), 0);
  const avg = c.map((_, j) => P.reduce((s, p) => s + p[j]!, 0) / z.length);
  return P.reduce((s, p) => s + H(p, 0), 0) / z.length - H(avg, 1e-5);
}

/** Central finite differences of lossF64 with respect to every element of z and then of c. */
function gradsF64(z: number[][], c: number[][], T: number, h = 1e-6): { dz: number[]; dc: number[] } {
  const diff = (m: number[][], i: number, k: number) => {
    const keep = m[i]![k]!;
    m[i]![k] = keep + h;
    const up = lossF64(z, c, T);
    m[i]![k] = keep - h;
    const down = lossF64(z, c, T);
    m[i]![k] = keep;
    return (up - down) / (2 * h);
  };
  return { dz: z.flatMap((row, i) => row.map((_, k) => diff(z, i, k))), dc: c.flatMap((row, j) => row.map((_, k) => diff(c, j, k))) };
}

/** Value and gradients (dL/dz, dL/dc) of f at (z, c) with tfjs's tf.grads, read back. */
function valueAndGrads(f: (z: tf.Tensor2D, c: tf.Tensor2D) => tf.Scalar, z: tf.Tensor2D, c: tf.Tensor2D): { value: number; dz: Float32Array; dc: Float32Array } {
  const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => f(a as tf.Tensor2D, b as tf.Tensor2D))([z, c]);
  const out = { value: value.dataSync()[0]!, dz: grads[0]!.dataSync().slice() as Float32Array, dc: grads[1]!.dataSync().slice() as Float32Array };
  tf.dispose([value, ...grads]);
  return out;
}

/** max |a - b| / max |b|. */
function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err / Math.max(scale, 1e-12);
}

describe.each(['cpu', 'wasm'])('fusedCodeEntropyLoss on %s', (backend) => {
  it('two rows, two codes: the value by hand and the gradients of the float64 formula', async () => {
    await tf.setBackend(backend);
    // similarities [[1, 0.6], [0, 0.8]] (as in the entropyLoss test of quantizer.test.ts)
    const z = [[1, 0], [0, 1]];
    const c = [[1, 0], [0.6, 0.8]];
    const T = 0.5;
    const softmax = (a: number[]) => {
      const e = a.map((v) => Math.exp(v / T));
      return e.map((v) => v / (e[0]! + e[1]!));
    };
    const p0 = softmax([1, 0.6]);
    const p1 = softmax([0, 0.8]);
    const H = (p: number[]) => -p.reduce((s, v) => s + v * Math.log(v), 0);
    const avg = [(p0[0]! + p1[0]!) / 2, (p0[1]! + p1[1]!) / 2];
    const byHand = (H(p0) + H(p1)) / 2 + avg.reduce((s, v) => s + v * Math.log(v + 1e-5), 0);
    expect(lossF64(z, c, T)).toBeCloseTo(byHand, 12);
    const zt = tf.tensor2d(z);
    const ct = tf.tensor2d(c);
    const got = valueAndGrads((a, b) => fusedCodeEntropyLoss(a, b, T), zt, ct);
    const want = gradsF64(z, c, T);
    expect(got.value).toBeCloseTo(byHand, 6);
    expect(maxRelErr(got.dz, want.dz)).toBeLessThan(1e-5);
    expect(maxRelErr(got.dc, want.dc)).toBeLessThan(1e-5);
    tf.dispose([zt, ct]);
  });

  it('one code (softmax 1: loss log(1 + eps), gradients 0), and a row whose other probabilities underflow to 0 at T = 0.01', async () => {
    await tf.setBackend(backend);
    const [z1, c1] = [tf.tensor2d([[0.6, 0.8], [1, 0]]), tf.tensor2d([[0, 1]])];
    const one = valueAndGrads((a, b) => fusedCodeEntropyLoss(a, b, 0.3), z1, c1);
    expect(one.value).toBeCloseTo(Math.log(1 + 1e-5), 9); // H(p) = 0; -H(avg) = log(1 + eps) with the eps inside the log
    expect(Array.from(one.dz)).toEqual([0, 0, 0, 0]);
    expect(Array.from(one.dc)).toEqual([0, 0]);
    // T = 0.01: logits (100, 99, -100) and (60, 70.7, -60); exp(-200) and exp(-130) underflow to 0 in float32
    const z = [[1, 0], [0.6, 0.8]];
    const c = [[1, 0], [0.99, Math.sqrt(1 - 0.99 * 0.99)], [-1, 0]];
    const [zt, ct] = [tf.tensor2d(z), tf.tensor2d(c)];
    const got = valueAndGrads((a, b) => fusedCodeEntropyLoss(a, b, 0.01), zt, ct);
    const want = gradsF64(z, c, 0.01);
    tf.dispose([z1, c1, zt, ct]);
    expect(got.value).toBeCloseTo(lossF64(z, c, 0.01), 6);
    expect(maxRelErr(got.dz, want.dz)).toBeLessThan(1e-5);
    expect(maxRelErr(got.dc, want.dc)).toBeLessThan(1e-5);
  });

  it('random cases, codebook sizes on and off the kernel\'s 8-lane blocks: equal to autodiff of entropyLoss and to the chunked route', async () => {
    await tf.setBackend(backend);
    const rng = new Rng(`code-entropy-${backend}`);
    const randn = (r: number, k: number) => tf.tensor2d(Float32Array.from({ length: r * k }, () => rng.normal()), [r, k]);
    for (const [N, V, d, T] of [[5, 1, 3, 0.1], [7, 3, 2, 1], [33, 8, 8, 0.01], [50, 13, 5, 0.05], [64, 100, 8, 0.01], [20, 257, 4, 0.2]] as const) {
      const before = tf.memory().numTensors;
      const [z, c] = tf.tidy(() => [l2Normalize(randn(N, d)), l2Normalize(randn(V, d))]);
      const ref = valueAndGrads((a, b) => entropyLoss(tf.matMul(a, b, false, true) as tf.Tensor2D, T), z, c);
      const chunked = valueAndGrads((a, b) => codeEntropyLossChunked(a, b, T, 7), z, c);
      const got = valueAndGrads((a, b) => fusedCodeEntropyLoss(a, b, T), z, c);
      const at = `N ${N} V ${V} d ${d} T ${T}`;
      expect(Math.abs(got.value - ref.value), at).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref.value)));
      expect(Math.abs(got.value - chunked.value), at).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref.value)));
      for (const [g, r, name] of [[got.dz, ref.dz, 'dz'], [got.dc, ref.dc, 'dc'], [got.dz, chunked.dz, 'dz vs chunked'], [got.dc, chunked.dc, 'dc vs chunked']] as const) {
        expect(maxRelErr(g, r), `${at} ${name}`).toBeLessThan(1e-4);
      }
      // deterministic: a second evaluation is bit-identical
      const again = valueAndGrads((a, b) => fusedCodeEntropyLoss(a, b, T), z, c);
      expect(again.value).toBe(got.value);
      expect(Array.from(again.dz)).toEqual(Array.from(got.dz));
      expect(Array.from(again.dc)).toEqual(Array.from(got.dc));
      tf.dispose([z, c]);
      expect(tf.memory().numTensors, at).toBe(before);
    }
  });
});

describe('codeEntropy kernel', () => {
  it('is the same on Float32Arrays whichever backend is active, and refuses sizes that do not match', () => {
    const z = Float32Array.from([1, 0, 0, 1, 0.6, 0.8]);
    const c = Float32Array.from([1, 0, 0.6, 0.8, -1, 0]);
    const f = codeEntropyForward(z, c, 3, 3, 2, 0.5);
    expect(f.value).toBeCloseTo(lossF64([[1, 0], [0, 1], [0.6, 0.8]], [[1, 0], [0.6, 0.8], [-1, 0]], 0.5), 6);
    const b = codeEntropyBackward(z, c, 3, 3, 2, 0.5, f.saved, 2);
    const want = gradsF64([[1, 0], [0, 1], [0.6, 0.8]], [[1, 0], [0.6, 0.8], [-1, 0]], 0.5);
    expect(maxRelErr(b.dz, want.dz.map((v) => 2 * v))).toBeLessThan(1e-5);
    expect(maxRelErr(b.dcodes, want.dc.map((v) => 2 * v))).toBeLessThan(1e-5);
    expect(() => codeEntropyForward(z, c, 3, 2, 2, 0.5)).toThrow('codeEntropyForward: z of 6 and codes of 6 values do not match N 3, V 2, d 2');
  });
});
