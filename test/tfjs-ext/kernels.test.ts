import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loopMinMacs, simdMaxMacs } from '@factorgen/tfjs-ext/kernels/batchMatMul';
import { builtinKernel, registerTrainingKernels } from '@factorgen/tfjs-ext/kernels/register';
import { composite, type TensorBackend } from '@factorgen/tfjs-ext/kernels/compose';
import { conv2dBackpropFilterImpl } from '@factorgen/tfjs-ext/kernels/conv2dBackpropFilter';
import { wasmConv2dBackpropFilterImpl } from '@factorgen/tfjs-ext/kernels/wasmConv2dBackpropFilter';
import { Rng } from '@factorgen/nn';
import { heapColumnSumKernel } from '@factorgen/tfjs-ext/kernels/heapColumnSum';
import { heapGroupSumKernel } from '@factorgen/tfjs-ext/kernels/heapGroupSum';
import { heapGemmTNKernel } from '@factorgen/tfjs-ext/kernels/heapGemmTN';
import type { WasmBackend } from '@factorgen/tfjs-ext/kernels/slice';

/** Backend-independent test data: plain values, turned into tensors on whichever backend runs. */
type Arr = { shape: number[]; values: Float32Array | Int32Array; dtype: 'float32' | 'int32' };

const rng = new Rng('kernels-test');

function rand(shape: number[], lo = -1, hi = 1): Arr {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = lo + (hi - lo) * rng.next();
  return { shape, values, dtype: 'float32' };
}

function ints(shape: number[], values: number[]): Arr {
  return { shape, values: Int32Array.from(values), dtype: 'int32' };
}

function toTensor(a: Arr): tf.Tensor {
  return tf.tensor(a.values, a.shape, a.dtype);
}

/** Runs a kernel on `backend`: the registered one (ours where we replaced it) or tfjs's built-in. */
async function kernel(
  backend: string,
  which: 'registered' | 'builtin',
  name: string,
  inputs: Record<string, Arr>,
  attrs: tf.NamedAttrMap,
): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const ts: tf.NamedTensorMap = {};
    for (const [k, a] of Object.entries(inputs)) ts[k] = toTensor(a);
    let out: tf.Tensor;
    if (which === 'registered') {
      out = tf.engine().runKernel(name, ts, attrs) as tf.Tensor;
    } else {
      const config = builtinKernel(name, backend);
      if (!config) throw new Error(`no built-in ${name} on ${backend}`);
      const info = config.kernelFunc({ inputs: ts, backend: tf.backend(), attrs }) as tf.TensorInfo;
      out = tf.engine().makeTensorFromTensorInfo(info);
    }
    return { shape: out.shape, values: Float32Array.from(out.dataSync()) };
  });
}

/** |a - b| <= 1e-4 * max(1, max|b|) elementwise, and equal shapes. */
function expectClose(a: { shape: number[]; values: Float32Array }, b: { shape: number[]; values: Float32Array }, what: string): void {
  expect(a.shape, what).toEqual(b.shape);
  let scale = 1;
  for (const v of b.values) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < b.values.length; i++) worst = Math.max(worst, Math.abs(a.values[i]! - b.values[i]!));
  expect(worst / scale, what).toBeLessThan(1e-4);
}

/** Tensors the engine tracks and buffers the backends hold (composite intermediates would leak here). */
function live(): [number, number, number] {
  return [tf.memory().numTensors, tf.findBackend('cpu')!.numDataIds(), tf.findBackend('wasm')!.numDataIds()];
}

type ConvCase = { x: number[]; k: [number, number]; co: number; s: number; pad: 'same' | 'valid' | tf.backend_util.ExplicitPadding };

/** Hand-picked edge cases (strides 1/2, same/valid/explicit, odd and even sizes, 1x1 and even kernels) + random ones. */
function convCases(): ConvCase[] {
  const cases: ConvCase[] = [
    { x: [2, 7, 7, 3], k: [3, 3], co: 4, s: 1, pad: 'same' },
    { x: [2, 8, 8, 3], k: [3, 3], co: 4, s: 2, pad: 'same' },
    { x: [2, 9, 9, 3], k: [3, 3], co: 4, s: 2, pad: 'same' },
    { x: [2, 9, 11, 3], k: [3, 3], co: 5, s: 2, pad: 'valid' },
    { x: [1, 10, 10, 2], k: [3, 3], co: 5, s: 2, pad: 'valid' },
    { x: [1, 6, 6, 2], k: [1, 1], co: 3, s: 2, pad: 'valid' },
    { x: [2, 8, 8, 3], k: [4, 4], co: 2, s: 2, pad: 'same' },
    { x: [1, 5, 5, 2], k: [5, 5], co: 3, s: 1, pad: 'valid' },
    { x: [1, 7, 6, 1], k: [3, 2], co: 2, s: 1, pad: 'same' },
    { x: [2, 7, 7, 2], k: [3, 3], co: 3, s: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  ];
  for (let i = 0; i < 6; i++) {
    const k = 1 + rng.int(4);
    const h = k + rng.int(8);
    cases.push({
      x: [1 + rng.int(3), h, k + rng.int(8), 1 + rng.int(5)],
      k: [k, k],
      co: 1 + rng.int(6),
      s: 1 + rng.int(2),
      pad: rng.next() < 0.5 ? 'same' : 'valid',
    });
  }
  return cases;
}

function convOutShape(c: ConvCase): number[] {
  const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], [...c.k, c.x[3]!, c.co], c.s, 1, c.pad);
  return info.outShape;
}

beforeAll(async () => {
  await tf.setBackend('wasm');
  registerTrainingKernels('wasm');
  await tf.setBackend('cpu');
  registerTrainingKernels('cpu');
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('registration', () => {
  it('is idempotent and keeps the built-ins reachable', async () => {
    expect(registerTrainingKernels('wasm')).toEqual({ added: [], replaced: [] });
    expect(registerTrainingKernels('cpu')).toEqual({ added: [], replaced: [] });
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    // wasm had none: no built-in behind ours. cpu had one: still reachable as the reference.
    expect(builtinKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    expect(builtinKernel('Conv2DBackpropFilter', 'cpu')).not.toBe(tf.getKernel('Conv2DBackpropFilter', 'cpu'));
    expect(builtinKernel('Conv2DBackpropFilter', 'cpu')?.kernelName).toBe('Conv2DBackpropFilter');
  });
});

describe('conv kernels vs the cpu built-ins', () => {
  it('Conv2DBackpropFilter on wasm and cpu', async () => {
    const before = live();
    for (const c of convCases()) {
      const x = rand(c.x);
      const dy = rand(convOutShape(c));
      const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [...c.k, c.x[3]!, c.co] } as unknown as tf.NamedAttrMap;
      const ref = await kernel('cpu', 'builtin', 'Conv2DBackpropFilter', { x, dy }, attrs);
      expectClose(await kernel('wasm', 'registered', 'Conv2DBackpropFilter', { x, dy }, attrs), ref, `wasm ${JSON.stringify(c)}`);
      expectClose(await kernel('cpu', 'registered', 'Conv2DBackpropFilter', { x, dy }, attrs), ref, `cpu ${JSON.stringify(c)}`);
    }
    expect(live()).toEqual(before);
  });

  it('Conv2DBackpropFilter on wasm, grid kernel: matches the cpu built-in on the tokenizer\'s shapes (strides 1/2, same/valid/explicit, several chunks) and is the one registered', async () => {
    // Shapes the grid kernel takes (Ci % 4 == 0, Co % 8 == 0, maps large enough for gridMaxWaste); [2,64,64,4] -> 32 is
    // two chunks. Batches are small because the cpu built-in (the reference) is slow, and the machine may be loaded.
    const cases: ConvCase[] = [
      { x: [2, 28, 28, 24], k: [3, 3], co: 24, s: 1, pad: 'same' },
      { x: [1, 28, 28, 48], k: [3, 3], co: 48, s: 1, pad: 'same' },
      { x: [2, 64, 64, 4], k: [3, 3], co: 32, s: 1, pad: 'same' },
      { x: [1, 28, 28, 48], k: [3, 3], co: 24, s: 1, pad: 'same' },
      { x: [3, 28, 28, 24], k: [3, 3], co: 24, s: 2, pad: 'same' },
      { x: [1, 29, 31, 4], k: [3, 3], co: 8, s: 2, pad: 'same' },
      { x: [2, 26, 26, 8], k: [3, 3], co: 8, s: 1, pad: 'valid' },
      { x: [2, 27, 25, 4], k: [3, 3], co: 16, s: 2, pad: 'valid' },
      { x: [2, 24, 24, 4], k: [3, 3], co: 8, s: 1, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
      { x: [1, 32, 32, 8], k: [4, 4], co: 16, s: 2, pad: 'same' },
      { x: [1, 48, 48, 4], k: [5, 5], co: 8, s: 1, pad: 'same' },
    ];
    const before = live();
    for (const c of cases) {
      const x = rand(c.x);
      const dy = rand(convOutShape(c));
      const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [...c.k, c.x[3]!, c.co] } as unknown as tf.NamedAttrMap;
      const ref = await kernel('cpu', 'builtin', 'Conv2DBackpropFilter', { x, dy }, attrs);
      const got = await kernel('wasm', 'registered', 'Conv2DBackpropFilter', { x, dy }, attrs);
      expectClose(got, ref, JSON.stringify(c));
      // The registered kernel is the grid kernel (bit for bit), not the Conv2D composite (XNNPACK sums in another order).
      const run = (impl: typeof conv2dBackpropFilterImpl) =>
        tf.tidy(() => {
          const ts = { x: toTensor(x), dy: toTensor(dy) };
          const out = composite(tf.backend() as TensorBackend, 'wasm', (sc) => impl(sc, ts.x, ts.dy, attrs)!);
          return Float32Array.from(tf.engine().makeTensorFromTensorInfo(out).dataSync());
        });
      const grid = run(wasmConv2dBackpropFilterImpl as typeof conv2dBackpropFilterImpl);
      expect(Buffer.from(got.values.buffer).equals(Buffer.from(grid.buffer)), JSON.stringify(c)).toBe(true);
      // On the first case (batch 2) the two differ in the last bits, so the check above tells them apart.
      if (c === cases[0]) expect(Buffer.from(grid.buffer).equals(Buffer.from(run(conv2dBackpropFilterImpl).buffer))).toBe(false);
    }
    expect(live()).toEqual(before);
  }, 600_000);

  it('Conv2DBackpropInput on wasm', async () => {
    const before = live();
    for (const c of convCases()) {
      const filter = rand([...c.k, c.x[3]!, c.co]);
      const dy = rand(convOutShape(c));
      const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: c.x } as unknown as tf.NamedAttrMap;
      const ref = await kernel('cpu', 'builtin', 'Conv2DBackpropInput', { dy, filter }, attrs);
      expectClose(await kernel('wasm', 'registered', 'Conv2DBackpropInput', { dy, filter }, attrs), ref, JSON.stringify(c));
    }
    expect(live()).toEqual(before);
  });
});

describe('UnsortedSegmentSum', () => {
  it('matches the cpu built-in, incl. repeated, unused and out-of-range ids and 2-D ids', async () => {
    const before = live();
    const cases: [Arr, Arr, number][] = [
      [rand([6, 3]), ints([6], [0, 2, 2, 4, 0, 2]), 5],
      [rand([5, 2, 3]), ints([5], [1, -1, 3, 7, 1]), 4], // -1 and 7 are dropped
      [rand([7]), ints([7], [3, 3, 3, 0, 1, 1, 2]), 4],
    ];
    for (const [x, segmentIds, numSegments] of cases) {
      const ref = await kernel('cpu', 'builtin', 'UnsortedSegmentSum', { x, segmentIds }, { numSegments });
      for (const be of ['wasm', 'cpu']) {
        expectClose(await kernel(be, 'registered', 'UnsortedSegmentSum', { x, segmentIds }, { numSegments }), ref, `${be} ${x.shape}`);
      }
    }
    expect(live()).toEqual(before);
  });

  it('sums into the right rows for a codebook-sized problem and for 2-D ids (hand loop reference)', async () => {
    // The cpu built-in takes only 1-D ids and loops over segments, so these use a plain loop as reference.
    const cases: [number[], number, number][] = [
      [[3000], 1024, 32],
      [[4, 5], 7, 3],
    ];
    for (const [idsShape, vocab, dim] of cases) {
      const rows = idsShape.reduce((a, b) => a * b, 1);
      const x = rand([...idsShape, dim]);
      const ids = ints(idsShape, Array.from({ length: rows }, () => rng.int(vocab)));
      const want = new Float32Array(vocab * dim);
      for (let i = 0; i < rows; i++) for (let d = 0; d < dim; d++) want[ids.values[i]! * dim + d] += x.values[i * dim + d]!;
      for (const be of ['wasm', 'cpu']) {
        const got = await kernel(be, 'registered', 'UnsortedSegmentSum', { x, segmentIds: ids }, { numSegments: vocab });
        expectClose(got, { shape: [vocab, dim], values: want }, `${be} ${idsShape}`);
      }
    }
  });
});

describe('BatchMatMul (wasm replacement)', () => {
  it('a tall A^T B (a dense weight gradient) runs on the heap kernel and equals the transpose + XNNPACK route bit for bit', async () => {
    await tf.setBackend('wasm');
    expect(heapGemmTNKernel(tf.backend() as WasmBackend)).not.toBeNull();
    // K past one and several 128-row blocks, not a multiple of them; the smallest M and N the kernel takes; a batch dim of 1
    for (const [K, M, N, lead] of [[1024, 4, 8, 0], [1300, 12, 24, 0], [3136, 64, 8, 1], [1029, 8, 16, 1]] as const) {
      const a = rand(lead ? [1, K, M] : [K, M]);
      const b = rand(lead ? [1, K, N] : [K, N]);
      const before = live();
      const got = await kernel('wasm', 'registered', 'BatchMatMul', { a, b }, { transposeA: true, transposeB: false });
      const ref = tf.tidy(() => {
        const aT = tf.transpose(toTensor(a).reshape([K, M])).reshape([1, M, K]);
        const info = builtinKernel('BatchMatMul', 'wasm')!.kernelFunc({ inputs: { a: aT, b: toTensor(b).reshape([1, K, N]) }, backend: tf.backend(), attrs: { transposeA: false, transposeB: false } }) as tf.TensorInfo;
        return Float32Array.from(tf.engine().makeTensorFromTensorInfo(info).dataSync());
      });
      expect(live()).toEqual(before);
      expect(got.shape).toEqual(lead ? [1, M, N] : [M, N]);
      expect(Buffer.from(got.values.buffer).equals(Buffer.from(ref.buffer)), JSON.stringify([K, M, N])).toBe(true);
    }
  });

  it('matches the cpu built-in for every transpose and batch layout', async () => {
    const before = live();
    const big = Math.ceil(Math.cbrt(loopMinMacs)) + 4; // per-batch work above the built-in's threshold (SIMD kernel)
    const huge = Math.ceil(Math.cbrt(simdMaxMacs)) + 4; // above the SIMD kernel's: the loop of XNNPACK products
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 6], [6, 7], false, false],
      [[6, 5], [6, 7], true, false],
      [[5, 6], [7, 6], false, true],
      [[6, 5], [7, 6], true, true],
      [[3, 5, 6], [3, 6, 7], false, false],
      [[3, 6, 5], [3, 7, 6], true, true],
      [[3, 5, 6], [6, 7], false, false],
      [[3, 5, 6], [1, 7, 6], false, true],
      [[5, 6], [3, 6, 7], false, false],
      [[1, 6, 5], [2, 3, 6, 7], true, false],
      [[2, 3, 4, 5], [2, 3, 5, 6], false, false],
      [[2, big, big], [2, big, big], false, true],
      [[3, big, big], [3, big, big], true, false],
      [[2, huge, huge], [2, huge, huge], false, true],
      // attention's shapes: [B, heads, L, dh] @ [B, heads, L, dh]^T and the AR head's [N, heads, K, K] @ [N, heads, K, dh]
      [[2, 3, 7, 5], [2, 3, 9, 5], false, true],
      [[2, 3, 7, 9], [2, 3, 9, 5], false, false],
      [[50, 4, 2, 2], [50, 4, 2, 3], false, false],
      [[4, 1, 6], [4, 6, 1], false, false],
    ];
    for (const [sa, sb, transposeA, transposeB] of cases) {
      const a = rand(sa);
      const b = rand(sb);
      const ref = await kernel('cpu', 'builtin', 'BatchMatMul', { a, b }, { transposeA, transposeB });
      const got = await kernel('wasm', 'registered', 'BatchMatMul', { a, b }, { transposeA, transposeB });
      expectClose(got, ref, JSON.stringify([sa, sb, transposeA, transposeB]));
    }
    expect(live()).toEqual(before);
  });
});

describe('Sum (wasm replacement)', () => {
  it('is bit-identical to the built-in over leading axes (our column-sum kernel in the heap) and others (passed through); keepDims; leaks nothing', async () => {
    const rng = new Rng('sum');
    const cases: [number[], number | number[], boolean][] = [
      [[64, 28, 28, 24], [0, 1, 2], false],
      [[64, 7, 7, 48], [0, 1, 2], true],
      [[64, 14, 14, 64], [0, 1, 2], false],
      [[300, 71], 0, false], // 32 + 32 + 4 + 3 columns: every path of the kernel
      [[3136, 256], 0, false],
      [[64, 50, 128], [0, 1], false],
      [[64, 50, 128], [1, 0], false], // out of order: the built-in (which sums axis 0 fastest then)
      [[300, 1], 0, false],
      [[257, 3], [-2], false],
      [[1000, 17], 0, true],
      [[40, 9, 5], [0, 1], false], // below sumMinRows: the built-in
      [[16, 33, 7], [1, 2], false], // trailing axes: the built-in
      [[70, 9, 5], 1, false], // a middle axis: the built-in
      [[300, 20], [0, 1], false], // all axes: the built-in
    ];
    await tf.setBackend('wasm');
    expect(heapColumnSumKernel(tf.backend() as WasmBackend)).not.toBeNull();
    for (const [shape, axis, keepDims] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      // values of mixed magnitude and sign, exact zeros and a -0, so summation order would show in the bits
      const v = Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 0 : i % 89 === 0 ? -0 : rng.normal() * 10 ** ((i % 7) - 3)));
      const x = { shape, values: v, dtype: 'float32' as const };
      const before = live();
      const got = await kernel('wasm', 'registered', 'Sum', { x }, { axis, keepDims });
      const ref = await kernel('wasm', 'builtin', 'Sum', { x }, { axis, keepDims });
      expect(live()).toEqual(before);
      expect(got.shape, JSON.stringify([shape, axis, keepDims])).toEqual(ref.shape);
      expect(Buffer.from(got.values.buffer).equals(Buffer.from(ref.values.buffer)), JSON.stringify([shape, axis])).toBe(true);
    }
    // int32 goes to the built-in too
    await tf.setBackend('wasm');
    expect(tf.tidy(() => Array.from(tf.sum(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32'), 0).dataSync()))).toEqual([9, 12]);
  });
});

describe('Sum and Mean over axes [1, 3] (wasm replacements, GroupNorm statistics)', () => {
  it('are bit-identical to the built-ins (which transpose first), with and without keepDims; other axes pass through; leak nothing', async () => {
    const rng = new Rng('group-sum');
    const cases: [number[], number[]][] = [
      [[64, 784, 8, 4], [1, 3]],
      [[4, 49, 8, 8], [1, 3]],
      [[3, 10, 6, 5], [1, 3]], // 4 + 2 groups: both paths of the kernel
      [[2, 7, 3, 1], [1, 3]],
      [[2, 7, 1, 9], [1, 3]],
      [[3, 10, 6, 5], [3, 1]], // out of order: the built-in
      [[3, 10, 6, 5], [1, 2]], // other axes: the built-in
    ];
    await tf.setBackend('wasm');
    expect(heapGroupSumKernel(tf.backend() as WasmBackend)).not.toBeNull();
    for (const [shape, axis] of cases) {
      for (const name of ['Sum', 'Mean']) {
        for (const keepDims of [true, false]) {
          const n = shape.reduce((a, b) => a * b, 1);
          // mixed magnitudes and signs, zeros and a -0: the summation order shows in the bits
          const v = Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? 0 : i % 89 === 0 ? -0 : rng.normal() * 10 ** ((i % 7) - 3)));
          const x = { shape, values: v, dtype: 'float32' as const };
          const before = live();
          const got = await kernel('wasm', 'registered', name, { x }, { axis, keepDims });
          const ref = await kernel('wasm', 'builtin', name, { x }, { axis, keepDims });
          expect(live()).toEqual(before);
          const at = JSON.stringify([name, shape, axis, keepDims]);
          expect(got.shape, at).toEqual(ref.shape);
          expect(Buffer.from(got.values.buffer).equals(Buffer.from(ref.values.buffer)), at).toBe(true);
        }
      }
    }
  });
});

describe('Tile (wasm replacement)', () => {
  it('equals the built-in for ranks 0-5, short and long last axes, float32 and int32; leaks nothing', async () => {
    const cases: [number[], number[]][] = [
      [[64, 1, 8, 1], [1, 1, 1, 8]], // GroupNorm's per-channel repeat
      [[2, 1, 3, 1], [1, 5, 1, 4]],
      [[3, 20], [2, 3]], // long rows: block copies
      [[4], [3]],
      [[], []],
      [[2, 3, 1, 2, 2], [2, 1, 3, 1, 2]],
      [[2, 3], [0, 2]], // an empty output
    ];
    for (const [shape, reps] of cases) {
      const x = rand(shape);
      const before = live();
      const got = await kernel('wasm', 'registered', 'Tile', { x }, { reps });
      const ref = await kernel('wasm', 'builtin', 'Tile', { x }, { reps });
      expect(live()).toEqual(before);
      expect(got.shape, JSON.stringify([shape, reps])).toEqual(ref.shape);
      expect(Array.from(got.values), JSON.stringify([shape, reps])).toEqual(Array.from(ref.values));
    }
    const x = ints([2, 2], [1, -2, 3, 4]);
    const got = await kernel('wasm', 'registered', 'Tile', { x }, { reps: [2, 2] });
    expect(Array.from(got.values)).toEqual([1, -2, 1, -2, 3, 4, 3, 4, 1, -2, 1, -2, 3, 4, 3, 4]);
  });
});

describe('Cast (wasm replacement)', () => {
  it('to the same dtype shares the buffer (no copy) and disposes cleanly; other casts are the built-in\'s', async () => {
    await tf.setBackend('wasm');
    const wasm = tf.findBackend('wasm')!;
    const before = live();
    const x = tf.tensor2d([[1.5, -2.25], [0, 3]]);
    const ids = wasm.numDataIds();
    const y = tf.cast(x, 'float32');
    expect(wasm.numDataIds()).toBe(ids); // a second handle on x's buffer
    expect(Array.from(y.dataSync())).toEqual([1.5, -2.25, 0, 3]);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1.5, -2.25, 0, 3]); // still valid after x is gone
    const z = tf.cast(y, 'int32');
    expect(z.dtype).toBe('int32');
    expect(Array.from(z.dataSync())).toEqual([1, -2, 0, 3]);
    tf.dispose([y, z]);
    expect(live()).toEqual(before);
    // the gradient of a product (tfjs casts the saved operand to float32) is unchanged
    const g = tf.tidy(() => Array.from(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a, tf.tensor1d([2, -3]))))(tf.tensor1d([5, 7])).dataSync()));
    expect(g).toEqual([2, -3]);
    expect(live()).toEqual(before);
  });
});

describe('Slice, SplitV, Unpack (wasm replacements)', () => {
  it('match the cpu built-ins for ranks 1-5, partial and whole dims', async () => {
    const before = live();
    for (let i = 0; i < 12; i++) {
      const rank = 1 + (i % 5);
      const shape = Array.from({ length: rank }, () => 1 + rng.int(5));
      const begin = shape.map((d) => rng.int(d));
      const size = shape.map((d, j) => (rng.next() < 0.3 ? -1 : 1 + rng.int(d - begin[j]!)));
      const x = rand(shape);
      const ref = await kernel('cpu', 'registered', 'Slice', { x }, { begin, size });
      expectClose(await kernel('wasm', 'registered', 'Slice', { x }, { begin, size }), ref, `slice ${shape} ${begin} ${size}`);
    }
    const ints32: Arr = ints([2, 3, 4], Array.from({ length: 24 }, (_, i) => i * 7 - 50));
    expectClose(await kernel('wasm', 'registered', 'Slice', { x: ints32 }, { begin: [1, 1, 0], size: [1, 2, 3] }), { shape: [1, 2, 3], values: Float32Array.from([62, 69, 76, 90, 97, 104]) }, 'int32 slice');
    for (const [shape, split, axis] of [[[4, 6, 2], [1, 3, 2], 1], [[6, 3], 3, 0], [[2, 3, 5], [2, -1], -1]] as [number[], number | number[], number][]) {
      const x = rand(shape);
      await tf.setBackend('cpu');
      const want = tf.tidy(() => tf.split(toTensor(x), split, axis).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
      await tf.setBackend('wasm');
      const got = tf.tidy(() => tf.split(toTensor(x), split, axis).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
      expect(got.length).toBe(want.length);
      got.forEach((g, j) => expectClose(g, want[j]!, `split ${shape} part ${j}`));
    }
    for (const [shape, axis] of [[[3, 4, 2], 0], [[3, 4, 2], 1], [[3, 4, 2], 2], [[5], 0]] as [number[], number][]) {
      const x = rand(shape);
      await tf.setBackend('cpu');
      const want = tf.tidy(() => tf.unstack(toTensor(x), axis).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
      await tf.setBackend('wasm');
      const got = tf.tidy(() => tf.unstack(toTensor(x), axis).map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) })));
      got.forEach((g, j) => expectClose(g, want[j]!, `unstack ${shape} axis ${axis} part ${j}`));
    }
    expect(live()).toEqual(before);
  });
});

describe('pooling and resize gradients', () => {
  it('MaxPoolGrad on wasm matches cpu, also where whole windows are negative', async () => {
    const before = live();
    const cases: [number[], number, number, 'same' | 'valid'][] = [
      [[2, 6, 6, 3], 2, 2, 'valid'],
      [[2, 7, 7, 2], 3, 2, 'same'],
      [[1, 5, 6, 2], 2, 1, 'valid'],
    ];
    for (const [shape, filterSize, stride, pad] of cases) {
      for (const [lo, hi] of [[-1, 1], [-3, -1]] as const) {
        const input = rand(shape, lo, hi);
        const attrs = { filterSize: [filterSize, filterSize], strides: [stride, stride], pad, dimRoundingMode: undefined };
        await tf.setBackend('cpu');
        const output = tf.tidy(() => {
          const y = tf.maxPool(toTensor(input) as tf.Tensor4D, filterSize, stride, pad);
          return { shape: y.shape, values: Float32Array.from(y.dataSync()), dtype: 'float32' as const };
        });
        const dy = rand(output.shape);
        const ins = { dy, input, output };
        const ref = await kernel('cpu', 'builtin', 'MaxPoolGrad', ins, attrs as unknown as tf.NamedAttrMap);
        expectClose(await kernel('wasm', 'registered', 'MaxPoolGrad', ins, attrs as unknown as tf.NamedAttrMap), ref, `${shape} [${lo},${hi}]`);
      }
    }
    expect(live()).toEqual(before);
  });

  it('ResizeNearestNeighborGrad: hand values for batch 2, and the adjoint identity on both backends', async () => {
    // 2x2 -> 4x4, dy = 0..31 over [2,4,4,1]: each input pixel collects its 2x2 block.
    const images = rand([2, 2, 2, 1]);
    const dy: Arr = { shape: [2, 4, 4, 1], values: Float32Array.from({ length: 32 }, (_, i) => i), dtype: 'float32' };
    const attrs = { alignCorners: false, halfPixelCenters: false };
    for (const be of ['cpu', 'wasm']) {
      const got = await kernel(be, 'registered', 'ResizeNearestNeighborGrad', { images, dy }, attrs);
      expect(Array.from(got.values), be).toEqual([10, 18, 42, 50, 74, 82, 106, 114]);
    }
    // <resize(x), dy> == <x, grad(dy)> for non-integer ratios and every corner/centre mode.
    for (const [alignCorners, halfPixelCenters] of [[false, false], [true, false], [false, true]] as const) {
      const x = rand([2, 3, 4, 2]);
      const g = rand([2, 7, 5, 2]);
      for (const be of ['cpu', 'wasm']) {
        await tf.setBackend(be);
        const [lhs, rhs] = tf.tidy(() => {
          const xt = toTensor(x) as tf.Tensor4D;
          const gt = toTensor(g);
          const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.image.resizeNearestNeighbor(a as tf.Tensor4D, [7, 5], alignCorners, halfPixelCenters), gt)))(xt);
          const y = tf.image.resizeNearestNeighbor(xt, [7, 5], alignCorners, halfPixelCenters);
          return [tf.sum(tf.mul(y, gt)).dataSync()[0]!, tf.sum(tf.mul(xt, grad)).dataSync()[0]!];
        });
        expect(rhs, `${be} align=${alignCorners} hpc=${halfPixelCenters}`).toBeCloseTo(lhs, 4);
      }
    }
    // Without halfPixelCenters the wasm built-in is right: ours (in the heap) equals it bit for bit, 2x and odd ratios.
    for (const [inShape, outHW, alignCorners] of [[[3, 14, 14, 8], [28, 28], false], [[2, 5, 7, 3], [9, 11], true], [[2, 5, 7, 3], [9, 11], false]] as const) {
      const x = rand([...inShape]);
      const g = rand([inShape[0], outHW[0], outHW[1], inShape[3]]);
      const before = live();
      const attrs2 = { alignCorners, halfPixelCenters: false };
      const got = await kernel('wasm', 'registered', 'ResizeNearestNeighborGrad', { images: x, dy: g }, attrs2);
      const ref = await kernel('wasm', 'builtin', 'ResizeNearestNeighborGrad', { images: x, dy: g }, attrs2);
      expect(live()).toEqual(before);
      expect(Buffer.from(got.values.buffer).equals(Buffer.from(ref.values.buffer)), JSON.stringify([inShape, outHW, alignCorners])).toBe(true);
    }
  });
});

describe('gradients tfjs lacks', () => {
  it('stridedSlice: hand values, and the adjoint identity with masks and negative strides', async () => {
    await tf.setBackend('wasm');
    const before = live();
    const g = tf.tidy(() =>
      Array.from(tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.stridedSlice(x, [1, 0], [4, 5], [2, 2]), tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]))))(tf.zeros([4, 5])).dataSync()),
    );
    expect(g).toEqual([0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 4, 0, 5, 0, 6]);
    const slices: [number[], number[], number[], number, number, number][] = [
      [[0, 1, 0], [3, 4, 2], [1, 2, 1], 0, 0, 0],
      [[2, 0, 0], [0, 4, 2], [-1, 1, 1], 0, 0, 0],
      [[1, 0, 0], [0, 0, 0], [2, 3, 1], 0b011, 0b011, 0],
      [[1, 0, 0], [3, 4, 2], [1, 1, 1], 0, 0, 0],
      [[2, 0, 0], [2, 4, 2], [1, 1, 1], 0, 0, 0], // empty slice: zero gradient
      [[1, 0, 1], [2, 4, 2], [1, 1, 1], 0, 0, 0b101],
    ];
    for (const [begin, end, strides, beginMask, endMask, shrinkAxisMask] of slices) {
      const [lhs, rhs] = tf.tidy(() => {
        const x = toTensor(rand([3, 4, 2]));
        const f = (a: tf.Tensor) => tf.stridedSlice(a, begin, end, strides, beginMask, endMask, 0, 0, shrinkAxisMask);
        const dy = toTensor(rand(f(x).shape));
        const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), dy)))(x);
        return [tf.sum(tf.mul(f(x), dy)).dataSync()[0]!, tf.sum(tf.mul(x, grad)).dataSync()[0]!];
      });
      expect(rhs, JSON.stringify([begin, end, strides])).toBeCloseTo(lhs, 4);
    }
    expect(live()).toEqual(before);
  });

  it('depthToSpace: its gradient is the inverse rearrangement', async () => {
    await tf.setBackend('wasm');
    const before = live();
    tf.tidy(() => {
      const x = toTensor(rand([2, 2, 3, 8]));
      const dy = toTensor(rand([2, 4, 6, 2]));
      const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.depthToSpace(a as tf.Tensor4D, 2), dy)))(x);
      // depthToSpace is a permutation, so its gradient must map dy back exactly: depthToSpace(grad) == dy.
      expect(Array.from(tf.depthToSpace(grad as tf.Tensor4D, 2).dataSync())).toEqual(Array.from(dy.dataSync()));
    });
    expect(live()).toEqual(before);
  });

  it('gatherND sums repeated indices; comparisons pass zero gradient', async () => {
    await tf.setBackend('wasm');
    const before = live();
    tf.tidy(() => {
      const params = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
      const indices = tf.tensor2d([2, 0, 0, 1, 2, 0], [3, 2], 'int32');
      const g = tf.grad((p: tf.Tensor) => tf.sum(tf.mul(tf.gatherND(p, indices), tf.tensor1d([1, 10, 100]))))(params);
      expect(Array.from(g.dataSync())).toEqual([0, 10, 0, 0, 101, 0]);
      const x = tf.tensor1d([-2, -0.5, 0.5, 3]);
      const gw = tf.grad((a: tf.Tensor) => tf.sum(tf.where(tf.logicalAnd(tf.greater(a, 0), tf.less(a, 1)), tf.mul(a, 3), tf.zerosLike(a))))(x);
      expect(Array.from(gw.dataSync())).toEqual([0, 0, 3, 0]);
    });
    expect(live()).toEqual(before);
  });
});

/** Gradients of `loss` wrt freshly made variables holding `params`, computed on `backend`. */
async function gradsOn(
  backend: string,
  params: Record<string, Arr>,
  loss: (p: Record<string, tf.Tensor>) => tf.Scalar,
): Promise<Record<string, { shape: number[]; values: Float32Array }>> {
  await tf.setBackend(backend);
  const vars: Record<string, tf.Variable> = {};
  for (const [k, a] of Object.entries(params)) vars[k] = tf.tidy(() => tf.variable(toTensor(a), true, `${backend}/${k}/${rng.int(1e9)}`));
  const out: Record<string, { shape: number[]; values: Float32Array }> = {};
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => loss(vars), Object.values(vars));
    for (const [k, v] of Object.entries(vars)) out[k] = { shape: v.shape, values: Float32Array.from(grads[v.name]!.dataSync()) };
  });
  for (const v of Object.values(vars)) v.dispose();
  return out;
}

describe('training steps: wasm gradients equal cpu', () => {
  it('gather (embedding lookup) gradient', async () => {
    const before = live();
    const params = { table: rand([50, 8]) };
    const ids = ints([4, 6], Array.from({ length: 24 }, () => rng.int(50)));
    ids.values[3] = ids.values[0]!; // a repeated id must accumulate
    const target = rand([4, 6, 8]);
    const loss = (p: Record<string, tf.Tensor>) => tf.sum(tf.mul(tf.gather(p.table!, toTensor(ids)), toTensor(target))) as tf.Scalar;
    const want = await gradsOn('cpu', params, loss);
    const got = await gradsOn('wasm', params, loss);
    expectClose(got.table!, want.table!, 'table');
    expect(live()).toEqual(before);
  });

  it('a small conv net (conv s1/s2, resize, maxPool, depthToSpace, linear, logSoftmax) gradient', async () => {
    const before = live();
    const params = {
      c1: rand([3, 3, 1, 4]),
      b1: rand([4]),
      c2: rand([3, 3, 4, 8]),
      c3: rand([3, 3, 2, 6]),
      c4: rand([3, 3, 6, 6]),
      w: rand([6, 5]),
      emb: rand([10, 6]),
    };
    const x = rand([3, 8, 8, 1]);
    const labels = ints([3], [1, 4, 0]);
    const tokens = ints([3], [2, 9, 2]);
    const loss = (p: Record<string, tf.Tensor>) => {
      let h = tf.leakyRelu(tf.add(tf.conv2d(toTensor(x) as tf.Tensor4D, p.c1 as tf.Tensor4D, 1, 'same'), p.b1!), 0.2) as tf.Tensor4D;
      h = tf.relu(tf.conv2d(h, p.c2 as tf.Tensor4D, 2, 'same')); // [3,4,4,8]
      h = tf.depthToSpace(h, 2); // [3,8,8,2]
      h = tf.conv2d(h, p.c3 as tf.Tensor4D, 2, 'valid'); // [3,3,3,6]
      h = tf.image.resizeNearestNeighbor(h, [6, 6]);
      h = tf.maxPool(tf.conv2d(h, p.c4 as tf.Tensor4D, 1, 'same'), 2, 2, 'valid'); // [3,3,3,6]
      const feat = tf.add(tf.mean(h, [1, 2]), tf.gather(p.emb!, toTensor(tokens))); // [3,6]
      const logits = tf.matMul(feat, p.w!); // [3,5]
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(toTensor(labels), 5), tf.logSoftmax(logits)), 1))) as tf.Scalar;
    };
    const want = await gradsOn('cpu', params, loss);
    const got = await gradsOn('wasm', params, loss);
    for (const k of Object.keys(params)) expectClose(got[k]!, want[k]!, k);
    expect(live()).toEqual(before);
  });
});
