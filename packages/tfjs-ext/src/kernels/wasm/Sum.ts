import * as tf from '@tensorflow/tfjs';
import { composite, type TensorBackend, replaceBuiltin } from '../compose';
import { heapColumnSumKernel } from '../../simd/heapColumnSum';
import { groupReduce } from '../../simd/heapGroupSum';
import type { HeapBackend } from '../../simd/heapKernel';

/** Rows below which the built-in is kept (the product route's fixed cost, packing the right operand, is then not repaid). */
export const sumMinRows = 256;

/**
 * Sum for wasm over leading axes (bias and norm-scale gradients: [B,H,W,C] -> [C], [N,C] -> [C]) as column sums of
 * x [R,C] on our SIMD128 kernel in the backend's heap (heapColumnSum.wat, no copy): ~15x less time than the
 * built-in, which transposes x to put the summed axes last, and than the product ones [1,R] @ x [R,C] on XNNPACK,
 * which packs x anew for every call (20-30 ms for a [64,28,28,64] gradient; the route where the heap kernel cannot
 * be instantiated). Both add x[r,c] for r = 0, 1, ... into an accumulator starting at 0, the built-in's order, so
 * the result is bit-identical (test/tfjs-ext/kernels/sum.test.ts). Other reductions, non-float32 inputs and fewer than
 * `sumMinRows` rows go to the built-in, and so do leading axes given out of order (the built-in's order then differs).
 * Axes [1, 3] of a rank-4 x (GroupNorm's statistics) run on heapGroupSum.wat, also bit-identical (groupReduce).
 * No gradient change: Sum's gradient is backend-independent.
 * x: [...lead, ...rest], axis: the lead axes -> [...rest] (keepDims: [1,...,1, ...rest]).
 */
export function makeWasmSum(builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const grouped = groupReduce(args.backend as HeapBackend, x, axis, keepDims, false);
    if (grouped) return grouped;
    const rank = x.shape.length;
    // In ascending order only: the built-in sums in the order the axes are given ([1, 0] runs axis 0 fastest).
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const k = axes.length;
    const leading = k > 0 && k < rank && axes.every((a, i) => a === i);
    const R = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
    const rest = x.shape.slice(k);
    const C = rest.reduce((a, b) => a * b, 1);
    if (x.dtype !== 'float32' || !leading || R < sumMinRows || C === 0) return builtin.kernelFunc(args);
    const outShape = keepDims ? [...new Array<number>(k).fill(1), ...rest] : rest;
    const backend = args.backend as HeapBackend;
    const kernel = heapColumnSumKernel(backend);
    if (kernel) {
      // Offsets taken after makeOutput, which may grow the heap (offsets stay valid; views would not).
      const out = backend.makeOutput(outShape, 'float32');
      kernel.colsum(backend.getMemoryOffset(x.dataId), backend.getMemoryOffset(out.dataId), R, C);
      return out;
    }
    return composite(args.backend as TensorBackend, 'wasm', (s) => {
      const ones = s.make([1, R], 'float32', new Float32Array(R).fill(1));
      const out = s.run('BatchMatMul', { a: ones, b: s.reshape(x, [R, C]) }, { transposeA: false, transposeB: false });
      return s.reshape(out, outShape);
    });
  });
}
