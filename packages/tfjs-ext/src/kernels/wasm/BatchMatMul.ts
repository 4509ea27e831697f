import * as tf from '@tensorflow/tfjs';
import { composite, type TensorBackend, replaceBuiltin } from '../compose';
import { smallBatchMatMul, smallBatchMatMulKernel } from '../../simd/smallBatchMatMul';
import { heapGemmTNKernel } from '../../simd/heapGemmTN';
import type { HeapBackend } from '../../simd/heapKernel';

/**
 * Per-batch work (M*K*N multiply-adds) from which a loop of XNNPACK matMuls beats the wasm backend's scalar
 * batched loop (~1.8 GFLOP/s); below it the per-call overhead (slices, packing the right operand) dominates.
 * Measured per CPU-second: 32x[64x32]@[32x64] loop 1.5 vs 1.8, 32x[64x64]@[64x64] loop 4.9 vs 1.7,
 * 16x[128x128]^2 11.5 vs 1.9.
 */
export const loopMinMacs = 192 * 1024;

/**
 * Per-batch work below which batched products (same batch dims on both sides) run on our SIMD128 kernel
 * (smallBatchMatMul: ~20-27 GFLOP/s per CPU-second on attention shapes against the built-in's ~1.8, and 22.8 vs the
 * XNNPACK loop's 11.5 at 16x[128x128]^2); above it, the loop of XNNPACK products (cache-blocked) is kept.
 */
export const simdMaxMacs = 4 * 1024 * 1024;
/** Operand elements above which the SIMD kernel is not used (its own memory grows to hold them, and never shrinks). */
export const simdMaxElements = 32 * 1024 * 1024;

/**
 * Rows (K) from which a single A^T B (a dense layer's weight gradient over all positions) runs on our heap kernel
 * (heapGemmTN.wat) instead of an explicit transpose of A and an XNNPACK product that packs B anew: measured on the
 * tokenizer's [50176,64]^T [50176,32], 26.6 ms for the XNNPACK route.
 */
export const gemmTNMinRows = 1024;

/**
 * BatchMatMul for wasm that keeps work on XNNPACK. The built-in kernel uses XNNPACK only for a single
 * non-transposed product and a scalar loop (~1-2 GFLOP/s against ~20) for transposeA/transposeB and
 * batches, which is what matMul's own gradient produces. Here: transposes are done explicitly (memory
 * bound, cheap), a batch against one shared operand becomes a single tall (or wide) product, batches of small
 * products run on our SIMD128 kernel (smallBatchMatMul), batches of large ones become a loop of single products, and
 * a single tall A^T B (K >= gemmTNMinRows, M % 4 == 0, N % 8 == 0) runs on our heap kernel (heapGemmTN) with no copy.
 * a: [...batchA, M, K] (or [..., K, M] with transposeA), b: [...batchB, K, N] (or [..., N, K]) -> [...batch, M, N].
 */
export function makeBatchMatMul(backendName: string, builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = outerA.reduce((x, y) => x * y, 1);
    const batchB = outerB.reduce((x, y) => x * y, 1);
    const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
    // General broadcasting of batch dims (e.g. [2,1] with [1,3]) and non-float inputs: the built-in handles them.
    const simple = batchA === 1 || batchB === 1 || sameOuter;
    if (!simple || a.dtype !== 'float32' || b.dtype !== 'float32') return builtin.kernelFunc(args);
    const tn = backendName === 'wasm' && transposeA && !transposeB && batchA === 1 && batchB === 1 ? heapGemmTN(args.backend as HeapBackend, a, b) : null;
    if (tn) return tn;
    return composite(args.backend as TensorBackend, backendName, (s) => {
      const [ra, ca] = a.shape.slice(-2) as [number, number];
      const [rb, cb] = b.shape.slice(-2) as [number, number];
      const M = transposeA ? ca : ra;
      const K = transposeA ? ra : ca;
      const N = transposeB ? rb : cb;
      if ((transposeB ? cb : rb) !== K) throw new Error(`matMul: inner dimensions ${K} and ${transposeB ? cb : rb} differ`);
      const outShape = [...tf.backend_util.assertAndGetBroadcastShape(outerA, outerB), M, N];
      let a3 = s.reshape(a, [batchA, ra, ca]);
      if (transposeA) a3 = s.transpose(a3, [0, 2, 1]);
      let b3 = s.reshape(b, [batchB, rb, cb]);
      if (transposeB) b3 = s.transpose(b3, [0, 2, 1]);
      const noFlags = { transposeA: false, transposeB: false };
      if (batchB === 1) {
        // One shared right operand: stack all rows of a into one tall product.
        const out = s.call(builtin.kernelFunc, { a: s.reshape(a3, [1, batchA * M, K]), b: b3 }, noFlags);
        return s.reshape(out, outShape);
      }
      if (batchA === 1) {
        // One shared left operand: put all right operands side by side, [K, batchB*N], one wide product.
        const wide = s.reshape(s.transpose(b3, [1, 0, 2]), [1, K, batchB * N]);
        const out = s.call(builtin.kernelFunc, { a: a3, b: wide }, noFlags);
        return s.reshape(s.transpose(s.reshape(out, [M, batchB, N]), [1, 0, 2]), outShape);
      }
      const batch = Math.max(batchA, batchB);
      if (M * K * N < simdMaxMacs && batch * (M * K + K * N + M * N) <= simdMaxElements && smallBatchMatMulKernel()) {
        const out = smallBatchMatMul(s.read(a3) as Float32Array, s.read(b3) as Float32Array, batch, M, K, N);
        return s.reshape(s.make([batch, M, N], 'float32', out), outShape);
      }
      if (M * K * N < loopMinMacs) {
        return s.reshape(s.call(builtin.kernelFunc, { a: a3, b: b3 }, noFlags), outShape);
      }
      const parts: tf.TensorInfo[] = [];
      for (let i = 0; i < batchA; i++) {
        const ai = s.run('Slice', { x: a3 }, { begin: [i, 0, 0], size: [1, M, K] });
        const bi = s.run('Slice', { x: b3 }, { begin: [i, 0, 0], size: [1, K, N] });
        parts.push(s.call(builtin.kernelFunc, { a: ai, b: bi }, noFlags));
      }
      return s.reshape(parts.length === 1 ? parts[0]! : s.run('Concat', parts, { axis: 0 }), outShape);
    });
  });
}

/** A^T B for a [..., K, M], b [..., K, N] (batch 1) on the heap kernel when the shape suits it; else null. */
function heapGemmTN(backend: HeapBackend, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo | null {
  const [K, M] = a.shape.slice(-2) as [number, number];
  const [Kb, N] = b.shape.slice(-2) as [number, number];
  if (K !== Kb || K < gemmTNMinRows || M % 4 !== 0 || N % 8 !== 0 || M === 0 || N === 0) return null;
  const kernel = heapGemmTNKernel(backend);
  if (!kernel) return null;
  const outShape = [...tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), M, N];
  // Offsets taken after makeOutput, which may grow the heap (offsets stay valid; views would not).
  const out = backend.makeOutput(outShape, 'float32');
  kernel.gemmtn(backend.getMemoryOffset(a.dataId), backend.getMemoryOffset(b.dataId), backend.getMemoryOffset(out.dataId), K, M, N);
  return out;
}
