import * as tf from '@tensorflow/tfjs';
import { heapKernel, type HeapBackend } from './heapKernel';
import { heapGroupSumSharedWasm, heapGroupSumWasm } from './heapGroupSumWasm';
import type { WasmBackend } from '../kernels/wasm/wasmBackend';

/**
 * groupsum(x, out, A, N, G, c, mean): out[a, g] = sum over n, j of x[a, n, g, j] (x [A, N, G, c], out [A, G], byte
 * offsets in the wasm backend's heap; heapGroupSum.wat), in the built-in's (n, j) order; divided by N*c when mean.
 */
type Exports = { groupsum: (x: number, out: number, A: number, N: number, G: number, c: number, mean: number) => void };

const instances = new WeakMap<object, Exports | null>();

/** The kernel instantiated on this backend's heap, or null (no SIMD128, no reachable heap): callers use another route. */
export function heapGroupSumKernel(backend: WasmBackend): Exports | null {
  return heapKernel(backend, heapGroupSumWasm, heapGroupSumSharedWasm, instances);
}

/**
 * Sum or Mean of a float32 rank-4 x over axes 1 and 3 (GroupNorm's statistics: [B, positions, groups, channels per
 * group] -> [B, 1, G, 1] with keepDims, [B, G] without) on the heap kernel, bit-identical to the built-in, which
 * transposes x first (~4x the time). Null when the reduction is another one, x is not float32 or empty, or the kernel
 * is unavailable: the caller then runs the built-in.
 */
export function groupReduce(backend: WasmBackend, x: tf.TensorInfo, axis: number | number[], keepDims: boolean, mean: boolean): tf.TensorInfo | null {
  if (x.dtype !== 'float32' || x.shape.length !== 4 || x.shape.some((d) => d === 0)) return null;
  const axes = tf.util.parseAxisParam(axis, x.shape);
  if (axes.length !== 2 || axes[0] !== 1 || axes[1] !== 3) return null; // in this order only: the built-in's order follows the given one
  const kernel = heapGroupSumKernel(backend);
  if (!kernel) return null;
  const [A, N, G, c] = x.shape as [number, number, number, number];
  const be = backend as HeapBackend;
  // Offsets taken after makeOutput, which may grow the heap (offsets stay valid; views would not).
  const out = be.makeOutput(keepDims ? [A, 1, G, 1] : [A, G], 'float32');
  kernel.groupsum(be.getMemoryOffset(x.dataId), be.getMemoryOffset(out.dataId), A, N, G, c, mean ? 1 : 0);
  return out;
}
