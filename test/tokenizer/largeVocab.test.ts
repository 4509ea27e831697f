/**
 * Large vocabularies (FQGAN's 2 x 16384, UniTok's 8 x 4096): the chunked, custom-gradient code lookup, entropy loss and
 * output-layer cross-entropy give the values and gradients of the plain formulas (several row chunks exercised), and
 * keep only their inputs on the tape.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { linearCrossEntropy } from '@factorgen/tfjs-ext';
import { Rng, l2Normalize } from '@factorgen/nn';
import { codeEntropyLoss, codeEntropyLossChunked, entropyLoss, nearestCodes } from '@factorgen/tokenizer';
import { fusedCodeEntropyAvailable, fusedCodeEntropyLoss } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('wasm');
  await initBackend('cpu');
});

const rng = new Rng('large-vocab');
const randn = (shape: number[], scale = 1) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale), shape);

function maxRelErr(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let err = 0;
  for (let i = 0; i < b.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err / Math.max(scale, 1e-12);
}

/** Value and gradients of f over xs with tfjs's own tf.grads, read back. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[]) {
  const { value, grads } = tf.valueAndGrads(f)(xs);
  const out = { value: value.dataSync().slice(), grads: grads.map((g) => g.dataSync().slice()) };
  tf.dispose([value, ...grads]);
  return out;
}

/** Live backend buffers while f's forward pass ends under a tape (probe by a custom op at the loss). */
function buffersAtLoss(f: (...xs: tf.Tensor[]) => tf.Scalar, xs: tf.Tensor[]): number {
  let n = 0;
  const probe = tf.customGrad((a) => ({ value: tf.clone(a as tf.Tensor), gradFunc: (dy: tf.Tensor) => tf.clone(dy) }));
  const { value, grads } = tf.valueAndGrads((...a: tf.Tensor[]) => {
    const y = probe(f(...a)) as tf.Scalar;
    n = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    return y;
  })(xs);
  tf.dispose([value, ...grads]);
  return n;
}

// wasm: a real large vocabulary (N x V > 2^22: two row chunks by default); cpu (slow): small, with 7-row chunks.
describe.each([
  { backend: 'wasm', N: 300, V: 16384, rows: undefined },
  { backend: 'cpu', N: 40, V: 50, rows: 7 },
])('on $backend', ({ backend, N, V, rows }) => {
  it('nearestCodes: the argmax of the full similarity matrix, chunk by chunk', async () => {
    await tf.setBackend(backend);
    const z = l2Normalize(randn([N, 8]) as tf.Tensor2D);
    const c = l2Normalize(randn([V, 8]) as tf.Tensor2D);
    const want = tf.argMax(tf.matMul(z, c, false, true), 1);
    const got = nearestCodes(z, c, rows);
    expect(got.dtype).toBe('int32');
    expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
    tf.dispose([z, c, want, got]);
  });

  it.each([
    { route: 'chunked tfjs ops', loss: (a: tf.Tensor2D, b: tf.Tensor2D, T: number) => codeEntropyLossChunked(a, b, T, rows) },
    { route: 'fused SIMD128 kernel', loss: fusedCodeEntropyLoss },
  ])('codeEntropyLoss ($route): value and gradients of entropyLoss(z c^T / T); the tape keeps no N x V tensor', async ({ loss }) => {
    await tf.setBackend(backend);
    const z = l2Normalize(randn([N, 8]) as tf.Tensor2D);
    const c = l2Normalize(randn([V, 8]) as tf.Tensor2D);
    const T = 0.01;
    const ref = valueAndGrads((a, b) => entropyLoss(tf.matMul(a, b, false, true) as tf.Tensor2D, T), [z, c]);
    const got = valueAndGrads((a, b) => loss(a as tf.Tensor2D, b as tf.Tensor2D, T), [z, c]);
    expect(got.value[0]).toBeCloseTo(ref.value[0]!, 3);
    expect(maxRelErr(got.grads[0]!, ref.grads[0]!)).toBeLessThan(2e-3);
    expect(maxRelErr(got.grads[1]!, ref.grads[1]!)).toBeLessThan(2e-3);
    const plain = buffersAtLoss((a, b) => entropyLoss(tf.matMul(a, b, false, true) as tf.Tensor2D, T), [z, c]);
    const fused = buffersAtLoss((a, b) => loss(a as tf.Tensor2D, b as tf.Tensor2D, T), [z, c]);
    expect(fused).toBeLessThan(plain - 3);
    tf.dispose([z, c]);
  });

  it('codeEntropyLoss takes the fused kernel on this backend (it keeps tensors in CPU memory)', async () => {
    await tf.setBackend(backend);
    expect(fusedCodeEntropyAvailable()).toBe(true);
    const z = l2Normalize(randn([N, 8]) as tf.Tensor2D);
    const c = l2Normalize(randn([V, 8]) as tf.Tensor2D);
    const [a, b] = [codeEntropyLoss(z, c, 0.01), fusedCodeEntropyLoss(z, c, 0.01)];
    expect(a.dataSync()[0]).toBe(b.dataSync()[0]);
    tf.dispose([z, c, a, b]);
  });

  it('linearCrossEntropy: mean cross-entropy, accuracy and gradients of the plain output layer + logSoftmax', async () => {
    await tf.setBackend(backend);
    const x = randn([N, 16]) as tf.Tensor2D;
    const w = randn([16, V], 0.3) as tf.Tensor2D;
    const b = randn([V], 0.1) as tf.Tensor1D;
    const targets = tf.tensor1d(Int32Array.from({ length: N }, (_, i) => (i * 7919) % V), 'int32');
    const plain = (a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
      const logits = tf.add(tf.matMul(a as tf.Tensor2D, ww as tf.Tensor2D), bb);
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(targets, V), tf.logSoftmax(logits)), 1)));
    };
    const ref = valueAndGrads(plain, [x, w, b]);
    const got = valueAndGrads((a, ww, bb) => tf.slice(linearCrossEntropy(a as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, targets, rows), 0, 1).reshape([]), [x, w, b]);
    expect(got.value[0]).toBeCloseTo(ref.value[0]!, 4);
    for (let i = 0; i < 3; i++) expect(maxRelErr(got.grads[i]!, ref.grads[i]!), `grad ${i}`).toBeLessThan(1e-4);
    // Accuracy: with the argmax as targets it is 1.
    const acc = tf.tidy(() => {
      const logits = tf.add(tf.matMul(x, w), b);
      const best = tf.argMax(logits, 1);
      return linearCrossEntropy(x, w, b, best as tf.Tensor1D, rows).dataSync()[1];
    });
    expect(acc).toBe(1);
    const plainBuffers = buffersAtLoss((a, ww, bb) => plain(a, ww, bb) as tf.Scalar, [x, w, b]);
    const fusedBuffers = buffersAtLoss((a, ww, bb) => tf.slice(linearCrossEntropy(a as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D, targets, rows), 0, 1).reshape([]) as tf.Scalar, [x, w, b]);
    expect(fusedBuffers).toBeLessThan(plainBuffers - 2);
    tf.dispose([x, w, b, targets]);
  });
});
