import { heapKernel } from './heapKernel';
import { heapGemmTNSharedWasm, heapGemmTNWasm } from './heapGemmTNWasm';
import type { WasmBackend } from '../kernels/wasm/wasmBackend';

/**
 * gemmtn(a, b, c, K, M, N): C [M,N] = A^T B for A [K,M], B [K,N] at byte offsets in the wasm backend's heap
 * (heapGemmTN.wat); M % 4 == 0, N % 8 == 0; k-ordered float32 sums without fused multiply-add.
 */
type Exports = { gemmtn: (a: number, b: number, c: number, K: number, M: number, N: number) => void };

const instances = new WeakMap<object, Exports | null>();

/** The kernel instantiated on this backend's heap, or null (no SIMD128, no reachable heap): callers use another route. */
export function heapGemmTNKernel(backend: WasmBackend): Exports | null {
  return heapKernel(backend, heapGemmTNWasm, heapGemmTNSharedWasm, instances);
}
