import { smallBatchMatMulWasm } from './smallBatchMatMulWasm';

/**
 * Batched products of small float32 matrices on WebAssembly SIMD128 (smallBatchMatMul.wat): ~20-27 GFLOP/s per core
 * on attention's [B*heads, L, dh] shapes, where the wasm backend's BatchMatMul runs a scalar loop (~1.8) and a loop of
 * XNNPACK products loses to per-call overhead. The module has its own memory: operands are copied in and the result
 * out (memory-bound, cheap next to the products).
 */
type Exports = { memory: { buffer: ArrayBuffer; grow: (pages: number) => number }; bmm: (a: number, b: number, c: number, batch: number, M: number, K: number, N: number) => void };

/** The two WebAssembly constructors used here (the project's TypeScript libs declare no WebAssembly global). */
type WasmApi = { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: object) => { exports: unknown } };

let instance: Exports | null | undefined;

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The instantiated kernel, or null where WebAssembly SIMD128 is unavailable (then callers use another route). */
export function smallBatchMatMulKernel(): Exports | null {
  if (instance === undefined) {
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      if (!wasm) throw new Error('no WebAssembly');
      // under 1 KB: synchronous compilation is allowed everywhere (browsers cap it at 4 KB on the main thread).
      const mod = new wasm.Module(decodeBase64(smallBatchMatMulWasm));
      instance = new wasm.Instance(mod, {}).exports as Exports;
    } catch {
      instance = null;
    }
  }
  return instance;
}

/**
 * C[p] = A[p] @ B[p] for p < batch. a: [batch, M, K], b: [batch, K, N] (row-major) -> [batch, M, N]. Each element is
 * sum_k a[i,k] * b[k,j] in k order with float32 multiplies and adds (no fused multiply-add), so it equals a
 * sequential float32 loop bit for bit. Throws when SIMD128 is unavailable or the operands' sizes disagree.
 */
export function smallBatchMatMul(a: Float32Array, b: Float32Array, batch: number, M: number, K: number, N: number): Float32Array {
  const k = smallBatchMatMulKernel();
  if (!k) throw new Error('smallBatchMatMul: WebAssembly SIMD128 is not available');
  if (a.length !== batch * M * K || b.length !== batch * K * N) {
    throw new Error(`smallBatchMatMul: operands of ${a.length} and ${b.length} values do not match [${batch}, ${M}, ${K}] @ [${batch}, ${K}, ${N}]`);
  }
  const bOff = a.length;
  const cOff = bOff + b.length;
  const bytes = 4 * (cOff + batch * M * N);
  const have = k.memory.buffer.byteLength;
  if (bytes > have) k.memory.grow(Math.ceil((bytes - have) / 65536));
  const f32 = new Float32Array(k.memory.buffer);
  f32.set(a, 0);
  f32.set(b, bOff);
  k.bmm(0, 4 * bOff, 4 * cOff, batch, M, K, N);
  return f32.slice(cOff, cOff + batch * M * N);
}
