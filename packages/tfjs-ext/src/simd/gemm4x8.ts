import { gemm4x8Wasm } from './gemm4x8Wasm';

/**
 * Float32 products in 4 x 8 register blocks on WebAssembly SIMD128 (gemm4x8.wat), with a row stride of the left
 * operand of the caller's choosing: the wasm Conv2DBackpropFilter multiplies shifted rows of phase planes in place.
 * The module has its own memory, which callers fill (operands) and read (result) through `memory.buffer`.
 */
export type Gemm4x8 = {
  memory: { buffer: ArrayBuffer; grow: (pages: number) => number };
  /** C = A @ B, A [M,K] at row stride lda floats, B [K,N], C [M,N]; byte offsets; M % 4 == 0, N % 8 == 0; k-ordered float32 sums. */
  gemm: (a: number, lda: number, b: number, c: number, M: number, K: number, N: number) => void;
};

/** The two WebAssembly constructors used here (the project's TypeScript libs declare no WebAssembly global). */
type WasmApi = { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: object) => { exports: unknown } };

let instance: Gemm4x8 | null | undefined;

/** The instantiated kernel, or null where WebAssembly SIMD128 is unavailable (then callers use another route). */
export function gemm4x8Kernel(): Gemm4x8 | null {
  if (instance === undefined) {
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      if (!wasm) throw new Error('no WebAssembly');
      // under 1 KB: synchronous compilation is allowed everywhere (browsers cap it at 4 KB on the main thread).
      const bin = atob(gemm4x8Wasm);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      instance = new wasm.Instance(new wasm.Module(bytes), {}).exports as Gemm4x8;
    } catch {
      instance = null;
    }
  }
  return instance;
}

/** Grows the kernel's memory to at least `bytes` and returns a float32 view of all of it (views go stale on growth). */
export function gemm4x8Memory(k: Gemm4x8, bytes: number): Float32Array {
  const have = k.memory.buffer.byteLength;
  if (bytes > have) k.memory.grow(Math.ceil((bytes - have) / 65536));
  return new Float32Array(k.memory.buffer);
}
