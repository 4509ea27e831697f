/**
 * Shared data and helpers of the kernel tests (one file per kernel beside this one): seeded test data, running one
 * kernel on a backend, closeness checks, live-tensor counts, and gradients on a backend.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, expect } from 'vitest';
import { loopMinMacs, simdMaxMacs } from '@factorgen/tfjs-ext/kernels/wasm/BatchMatMul';
import { builtinKernel, registerTrainingKernels } from '@factorgen/tfjs-ext';
import { composite, type TensorBackend } from '@factorgen/tfjs-ext/kernels/compose';
import { conv2dBackpropFilterImpl } from '@factorgen/tfjs-ext/kernels/shared/Conv2DBackpropFilter';
import { wasmConv2dBackpropFilterImpl } from '@factorgen/tfjs-ext/kernels/wasm/Conv2DBackpropFilter';
import { Rng } from '@factorgen/nn';
import { heapColumnSumKernel } from '@factorgen/tfjs-ext/simd/heapColumnSum';
import { heapGroupSumKernel } from '@factorgen/tfjs-ext/simd/heapGroupSum';
import { heapGemmTNKernel } from '@factorgen/tfjs-ext/simd/heapGemmTN';
import type { WasmBackend } from '@factorgen/tfjs-ext/kernels/wasm/wasmBackend';

/** Backend-independent test data: plain values, turned into tensors on whichever backend runs. */
export type Arr = { shape: number[]; values: Float32Array | Int32Array; dtype: 'float32' | 'int32' };

export const rng = new Rng('kernels-test');

export function rand(shape: number[], lo = -1, hi = 1): Arr {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = lo + (hi - lo) * rng.next();
  return { shape, values, dtype: 'float32' };
}

export function ints(shape: number[], values: number[]): Arr {
  return { shape, values: Int32Array.from(values), dtype: 'int32' };
}

export function toTensor(a: Arr): tf.Tensor {
  return tf.tensor(a.values, a.shape, a.dtype);
}

/** Runs a kernel on `backend`: the registered one (ours where we replaced it) or tfjs's built-in. */
export async function kernel(
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
export function expectClose(a: { shape: number[]; values: Float32Array }, b: { shape: number[]; values: Float32Array }, what: string): void {
  expect(a.shape, what).toEqual(b.shape);
  let scale = 1;
  for (const v of b.values) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < b.values.length; i++) worst = Math.max(worst, Math.abs(a.values[i]! - b.values[i]!));
  expect(worst / scale, what).toBeLessThan(1e-4);
}

/** Tensors the engine tracks and buffers the backends hold (composite intermediates would leak here). */
export function live(): [number, number, number] {
  return [tf.memory().numTensors, tf.findBackend('cpu')!.numDataIds(), tf.findBackend('wasm')!.numDataIds()];
}

export type ConvCase = { x: number[]; k: [number, number]; co: number; s: number; pad: 'same' | 'valid' | tf.backend_util.ExplicitPadding };

/** Hand-picked edge cases (strides 1/2, same/valid/explicit, odd and even sizes, 1x1 and even kernels) + random ones. */
export function convCases(): ConvCase[] {
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

export function convOutShape(c: ConvCase): number[] {
  const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], [...c.k, c.x[3]!, c.co], c.s, 1, c.pad);
  return info.outShape;
}

/** Registers factorgen's kernels on wasm and cpu before the file's tests; leaves cpu selected after them. */
export function useTrainingKernels(): void {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    registerTrainingKernels('wasm');
    await tf.setBackend('cpu');
    registerTrainingKernels('cpu');
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });
}

/** Gradients of `loss` wrt freshly made variables holding `params`, computed on `backend`. */
export async function gradsOn(
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
