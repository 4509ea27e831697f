import { heapKernel } from './heapKernel';
import { heapColumnSumSharedWasm, heapColumnSumWasm } from './heapColumnSumWasm';
import type { WasmBackend } from '../kernels/wasm/wasmBackend';

/**
 * colsum(x, out, R, C): column sums of x [R, C] at byte offset x into out [C], both in the wasm backend's heap
 * (heapColumnSum.wat): out[c] = sum_r x[r, c] in row order, bit-identical to the built-in Sum over leading axes.
 */
type Exports = { colsum: (x: number, out: number, R: number, C: number) => void };

const instances = new WeakMap<object, Exports | null>();

/** The kernel instantiated on this backend's heap, or null (no SIMD128, no reachable heap): callers use another route. */
export function heapColumnSumKernel(backend: WasmBackend): Exports | null {
  return heapKernel(backend, heapColumnSumWasm, heapColumnSumSharedWasm, instances);
}
