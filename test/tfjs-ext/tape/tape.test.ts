/**
 * The memory-releasing gradient driver and the shared saved tensors (packages/tfjs-ext/src/tape): same gradients as
 * tf.variableGrads bit for bit, no leaks, and the memory they exist for (counted in backend buffers, not timed).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { Rng } from '@factorgen/nn';
import { variableGradsReleasing, gradientsReleasing, recompute, recomputeKeepingProducts, type KeptMatMul } from '@factorgen/tfjs-ext';
import { createGenerator, generatorLoss, makeGeneratorConfig } from '@factorgen/generator';
import { createTokenizer, tokenizerForward } from '@factorgen/tokenizer';
import { presetFashion } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('wasm');
  await initBackend('cpu');
});

/** Live backend buffers (not tensor handles: handles sharing one buffer count once). */
function buffers(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

/**
 * Value and gradient (w.r.t. w) of sum(body(h)^2), h = x * w[0, :8], through gradientsReleasing, and `saved`: the
 * backend buffers alive when the loss was formed beyond those before (what the tape keeps for the backward pass).
 */
function squareLossAndSaved(x: tf.Tensor, w: tf.Variable, body: (h: tf.Tensor) => tf.Tensor): { value: number; grad: Float32Array; saved: number } {
  const before = buffers();
  let saved = 0;
  const { value, grads } = gradientsReleasing(() => {
    const loss = tf.sum(tf.square(body(tf.mul(x, tf.slice(w, [0, 0], [1, 8])))));
    saved = buffers() - before;
    return loss as tf.Scalar;
  }, [w]);
  const out = { value: value.dataSync()[0]!, grad: grads[0]!.dataSync().slice() as Float32Array, saved };
  tf.dispose([value, grads[0]!]);
  return out;
}

function gradsBoth(f: () => tf.Scalar, vars: tf.Variable[]) {
  const read = (r: { value: tf.Scalar; grads: tf.NamedTensorMap }) => {
    const out = { value: r.value.dataSync()[0], grads: Object.fromEntries(Object.entries(r.grads).map(([k, g]) => [k, g.dataSync().slice()])) };
    tf.dispose([r.value, ...Object.values(r.grads)]);
    return out;
  };
  const before = tf.memory().numTensors;
  const ours = read(variableGradsReleasing(f, vars));
  expect(tf.memory().numTensors, 'variableGradsReleasing leaks').toBe(before);
  const ref = read(tf.variableGrads(f, vars) as { value: tf.Scalar; grads: tf.NamedTensorMap });
  return { ours, ref };
}

describe.each(['wasm', 'cpu'])('gradientsReleasing on %s', (backend) => {
  it('generator loss (AR head, dropout, label dropout): bit-identical to tf.variableGrads', async () => {
    await tf.setBackend(backend);
    const cfg = makeGeneratorConfig({
      gridH: 2, gridW: 3, subCodebookSizes: [4, 6], numClasses: 3, width: 16, depth: 2, heads: 2, mlpHidden: 24,
      headMode: 'ar', headLayers: 1, headWidth: 16, headHeads: 2, headMlpHidden: 16, dropout: 0.2, classDropout: 0.5, rope: '2d',
    });
    const gen = createGenerator(cfg, 1);
    const tokens = tf.tensor3d(Int32Array.from({ length: 3 * 6 * 2 }, (_, i) => (i % 2 === 0 ? (i * 7) % 4 : (i * 5) % 6)), [3, 6, 2], 'int32');
    const labels = Int32Array.from([0, 1, 2]);
    const f = () => generatorLoss(gen, tokens, labels, { training: true, rng: new Rng('tape') }).loss;
    const { ours, ref } = gradsBoth(f, [...gen.params.vars.values()]);
    expect(ours.value).toBe(ref.value);
    expect(Object.keys(ours.grads).sort()).toEqual(Object.keys(ref.grads).sort());
    for (const k of Object.keys(ref.grads)) expect(ours.grads[k], k).toEqual(ref.grads[k]);
    tokens.dispose();
    gen.params.dispose();
  });

  it('tokenizer loss (custom gradients: straight-through, gather, stop-gradient): bit-identical', async () => {
    await tf.setBackend(backend);
    const cfg = presetFashion('fq', 2, 16, { baseChannels: 8 });
    cfg.perceptualWeight = 0;
    const tok = createTokenizer(cfg, 2);
    const rng = new Rng('tape-x');
    const x = tf.tensor4d(Float32Array.from({ length: 2 * 28 * 28 }, () => rng.next() * 2 - 1), [2, 28, 28, 1]);
    const { ours, ref } = gradsBoth(() => tokenizerForward(tok, x).total, [...tok.params.vars.values()]);
    expect(ours.value).toBe(ref.value);
    for (const k of Object.keys(ref.grads)) expect(ours.grads[k], k).toEqual(ref.grads[k]);
    x.dispose();
    tok.params.dispose();
  });
});

describe('memory (wasm)', () => {
  /**
   * A chain of n tf.sin over a [size] tensor, with a probe (custom identity) at both ends: the forward probe at the end
   * of the chain counts live buffers when the forward pass is done, the backward probe at its start counts them when
   * the backward pass is nearly done.
   */
  function chain(n: number, drive: (f: () => tf.Scalar, xs: tf.Variable[]) => void) {
    const counts = { forwardEnd: 0, backwardEnd: 0 };
    const probe = (which: 'forwardEnd' | 'backwardEnd') =>
      tf.customGrad((a) => ({
        value: tf.clone(a as tf.Tensor),
        gradFunc: (dy: tf.Tensor) => {
          if (which === 'backwardEnd') counts.backwardEnd = buffers();
          return tf.clone(dy);
        },
      }));
    const start = probe('backwardEnd');
    const end = probe('forwardEnd');
    const v = tf.variable(tf.fill([1 << 16], 0.5));
    drive(() => {
      let y = start(v) as tf.Tensor;
      for (let i = 0; i < n; i++) y = tf.sin(y);
      y = end(y) as tf.Tensor;
      counts.forwardEnd = buffers();
      return tf.sum(y);
    }, [v]);
    v.dispose();
    return counts;
  }

  it('saved tensors share their buffer; gradients and saved activations are freed during the backward pass', async () => {
    await tf.setBackend('wasm');
    const n = 30;
    const ours = chain(n, (f, xs) => {
      const { value, grads } = gradientsReleasing(f, xs);
      tf.dispose([value, ...grads.filter((g): g is tf.Tensor => g !== null)]);
    });
    const ref = chain(n, (f, xs) => {
      const { value, grads } = tf.variableGrads(f, xs);
      tf.dispose([value, ...Object.values(grads)]);
    });
    // Forward: n sin outputs, each saved by the next sin; shared, they are n buffers, not 2n.
    expect(ours.forwardEnd).toBeLessThan(n + 12);
    // Backward, nearly done: tfjs still holds every saved activation and every intermediate gradient (> 2n);
    // the releasing driver holds a handful.
    expect(ref.backwardEnd).toBeGreaterThan(2 * n);
    expect(ours.backwardEnd).toBeLessThan(12);
  });
});

describe.each(['wasm', 'cpu'])('recompute on %s', (backend) => {
  it('same value and gradients as the plain function, bit for bit; the tape keeps only the inputs', async () => {
    await tf.setBackend(backend);
    const rng = new Rng('recompute');
    const w = tf.variable(tf.tensor2d(Float32Array.from({ length: 64 }, () => rng.next() - 0.5), [8, 8]));
    const x = tf.tensor2d(Float32Array.from({ length: 4 * 8 }, () => rng.next() - 0.5), [4, 8]);
    const shift = tf.scalar(0.25);
    // A few layers so that the plain tape holds many activations; `shift` is a constant the segment reads.
    const seg = (a: tf.Tensor, ww: tf.Tensor, c: tf.Tensor) => {
      let y = a;
      for (let i = 0; i < 6; i++) y = tf.tanh(tf.add(tf.matMul(y, ww), c));
      return y;
    };
    const before = tf.memory().numTensors;
    const plain = squareLossAndSaved(x, w, (h) => seg(h, w, shift));
    const rec = squareLossAndSaved(x, w, (h) => recompute(seg, [h, w], [shift]));
    expect(tf.memory().numTensors).toBe(before);
    expect(rec.value).toBe(plain.value);
    expect(rec.grad).toEqual(plain.grad);
    expect(rec.saved).toBeLessThan(plain.saved - 10);
    tf.dispose([w, x, shift]);
  });
});

describe.each(['wasm', 'cpu'])('recomputeKeepingProducts on %s', (backend) => {
  it('same value and gradients as the plain function, bit for bit; keeps the products and the inputs, not the rest', async () => {
    await tf.setBackend(backend);
    const rng = new Rng('recomputeKeepingProducts');
    const w = tf.variable(tf.tensor2d(Float32Array.from({ length: 64 }, () => rng.next() - 0.5), [8, 8]));
    const x = tf.tensor2d(Float32Array.from({ length: 4 * 8 }, () => rng.next() - 0.5), [4, 8]);
    const shift = tf.scalar(0.25);
    const layers = 6;
    // Each layer: one kept product and two elementwise ops (whose outputs the kept path recomputes).
    const seg = (mm: KeptMatMul, a: tf.Tensor, ww: tf.Tensor, c: tf.Tensor) => {
      let y = a;
      for (let i = 0; i < layers; i++) y = tf.tanh(tf.add(mm(y as tf.Tensor2D, ww as tf.Tensor2D), c));
      return y;
    };
    const plainMatMul: KeptMatMul = (a, b) => tf.matMul(a, b);
    const before = tf.memory().numTensors;
    const plain = squareLossAndSaved(x, w, (h) => seg(plainMatMul, h, w, shift));
    const kept = squareLossAndSaved(x, w, (h) => recomputeKeepingProducts((mm, ...t) => seg(mm, t[0]!, t[1]!, t[2]!), [h, w], [shift]));
    const all = squareLossAndSaved(x, w, (h) => recompute((...t) => seg(plainMatMul, t[0]!, t[1]!, t[2]!), [h, w], [shift]));
    expect(tf.memory().numTensors).toBe(before);
    expect(kept.value).toBe(plain.value);
    expect(kept.grad).toEqual(plain.grad);
    // The kept path holds the layers' products on top of what 'all' holds, and less than the plain tape.
    expect(kept.saved).toBe(all.saved + layers);
    expect(kept.saved).toBeLessThan(plain.saved - 10);
    tf.dispose([w, x, shift]);
  });

  it('refuses an f that calls mm a different number of times on the rerun', async () => {
    await tf.setBackend(backend);
    const w = tf.variable(tf.eye(4) as tf.Tensor2D);
    let calls = 0;
    const f = (mm: KeptMatMul, ww: tf.Tensor) => {
      const y = mm(ww as tf.Tensor2D, ww as tf.Tensor2D);
      return calls++ === 0 ? y : mm(y, ww as tf.Tensor2D);
    };
    const before = tf.memory().numTensors;
    expect(() => gradientsReleasing(() => tf.sum(recomputeKeepingProducts(f, [w])), [w])).toThrow(
      'recomputeKeepingProducts: f called mm more often than in the forward pass',
    );
    w.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
  });
});
