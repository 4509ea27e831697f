import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { conv2d, createConv, createLinear, dense, denseOf, gatedMlp, gelu, linear, mlp, ParamStore, Rng, swiglu, swish } from '@factorgen/nn';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('linear and conv', () => {
  it('linear: x @ w + b over the last axis of a 3-D input, by hand; a wrong inner size is refused', () => {
    const got = tf.tidy(() => {
      const x = tf.tensor3d([[[1, 2], [3, 4]]]);
      const y = linear(x, tf.tensor2d([[1, 0, 2], [0, 1, 1]]), tf.tensor1d([10, 20, 30]));
      expect(y.shape).toEqual([1, 2, 3]);
      return Array.from(y.dataSync());
    });
    expect(got).toEqual([11, 22, 34, 13, 24, 40]);
    expect(() => tf.tidy(() => linear(tf.zeros([2, 3]), tf.zeros([2, 2])))).toThrow('linear: input last dim 3 != weight rows 2');
  });

  it('createLinear makes name/w (fan-in uniform) then name/b (zeros); dense and denseOf apply them', () => {
    const store = new ParamStore(new Rng('lin'));
    createLinear(store, 'fc', 4, 2);
    expect([...store.vars.keys()]).toEqual(['fc/w', 'fc/b']);
    const w = Array.from(store.get('fc/w').dataSync());
    expect(w.every((v) => Math.abs(v) <= 0.5)).toBe(true); // 1 / sqrt(4)
    expect(Array.from(store.get('fc/b').dataSync())).toEqual([0, 0]);
    store.get('fc/b').assign(tf.tensor1d([1, -1]));
    const x = tf.tensor2d([[1, 0, 0, 2]]);
    const [a, b] = tf.tidy(() => [dense(store, 'fc', x), denseOf(store, 'fc')(x)].map((t) => Array.from(t.dataSync())));
    expect(a).toEqual(b);
    expect(a[0]).toBeCloseTo(w[0] + 2 * w[6] + 1, 6);
    expect(a[1]).toBeCloseTo(w[1] + 2 * w[7] - 1, 6);
    tf.dispose(x);
    store.dispose();
  });

  it("conv2d: 3x3 'same' with bias, by hand on a 3x3 map; stride 2 keeps ceil(H/2)", () => {
    const store = new ParamStore(new Rng('conv'));
    createConv(store, 'c', 1, 1);
    expect([...store.vars.keys()]).toEqual(['c/w', 'c/b']);
    store.get('c/w').assign(tf.ones([3, 3, 1, 1]));
    store.get('c/b').assign(tf.tensor1d([0.5]));
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const [s1, s2] = tf.tidy(() => [conv2d(store, 'c', x), conv2d(store, 'c', x, 2)].map((t) => ({ shape: t.shape, v: Array.from(t.dataSync()) })));
    // box sums over the zero-padded 3x3 neighbourhood, + 0.5
    expect(s1.v).toEqual([12, 21, 16, 27, 45, 33, 24, 39, 28].map((v) => v + 0.5));
    expect(s2.shape).toEqual([1, 2, 2, 1]);
    tf.dispose(x);
    store.dispose();
  });
});

describe('activations and MLPs', () => {
  it('swish(x) = x sigmoid(x) and tanh-GELU, by hand', () => {
    const [s, g] = tf.tidy(() => [swish(tf.tensor1d([1, -2])), gelu(tf.tensor1d([1, -2]))].map((t) => Array.from(t.dataSync())));
    expect(s[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
    expect(s[1]).toBeCloseTo(-2 / (1 + Math.exp(2)), 6);
    const tanhGelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    expect(g[0]).toBeCloseTo(tanhGelu(1), 6);
    expect(g[1]).toBeCloseTo(tanhGelu(-2), 6);
    expect(g[0]).toBeCloseTo(0.8412, 4); // the erf GELU is 0.8413
  });

  it('gatedMlp: down(act(gate(x)) * up(x)) with SiLU or GELU, by hand; projections in the order gate, up, down', () => {
    const calls: string[] = [];
    const p = {
      gate: (t: tf.Tensor) => (calls.push('gate'), tf.mul(t, 2)),
      up: (t: tf.Tensor) => (calls.push('up'), tf.add(t, 1)),
      down: (t: tf.Tensor) => (calls.push('down'), tf.sum(t, -1, true)),
    };
    const [silu, geglu] = tf.tidy(() => (['silu', 'gelu'] as const).map((a) => gatedMlp(tf.tensor2d([[1, -0.5]]), p, a).dataSync()[0]));
    expect(calls).toEqual(['gate', 'up', 'down', 'gate', 'up', 'down']);
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    // gate = [2, -1], up = [2, 0.5]
    expect(silu).toBeCloseTo(2 * sig(2) * 2 + -1 * sig(-1) * 0.5, 6);
    const tanhGelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    expect(geglu).toBeCloseTo(tanhGelu(2) * 2 + tanhGelu(-1) * 0.5, 6);
  });

  it('swiglu on bare weights is gatedMlp with SiLU over linear, bit for bit; mlp = proj(act(fc(x))) for gelu, silu, relu', () => {
    const r = new Rng('mlp');
    const t = (shape: number[]) => tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal()), shape);
    const [x, wg, wu, wd] = [t([2, 3, 4]), t([4, 6]), t([4, 6]), t([6, 4])];
    const before = tf.memory().numTensors;
    const two = { fc: (v: tf.Tensor) => linear(v, wg), proj: (v: tf.Tensor) => linear(v, wd) };
    const got = tf.tidy(() => [
      swiglu(x, wg, wu, wd),
      gatedMlp(x, { gate: (v) => linear(v, wg), up: (v) => linear(v, wu), down: (v) => linear(v, wd) }, 'silu'),
      mlp(x, two, 'gelu'),
      linear(gelu(linear(x, wg)), wd),
      mlp(x, two, 'silu'),
      linear(swish(linear(x, wg)), wd),
      mlp(x, two, 'relu'),
      linear(tf.relu(linear(x, wg)), wd),
    ].map((v) => Array.from(v.dataSync())));
    for (let i = 0; i < got.length; i += 2) expect(got[i], `pair ${i / 2}`).toEqual(got[i + 1]);
    expect(got[4]).not.toEqual(got[6]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, wg, wu, wd]);
  });
});
