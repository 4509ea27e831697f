import type { WasmBackend } from '../kernels/wasm/wasmBackend';

/**
 * Our SIMD128 kernels that work in the wasm backend's heap itself (they import tfjs's memory), so operands are read
 * and results written where tensors lie, with no copy in or out: offsets come from the backend's getMemoryOffset.
 */

/** A WebAssembly.Memory as far as it is used here (the project's TypeScript libs declare no WebAssembly global). */
type Memory = { buffer: ArrayBuffer | SharedArrayBuffer };
type WasmApi = { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: object) => { exports: unknown } };

/** The emscripten module behind the wasm backend: its memory is `asm.memory` (stock build) or `wasmMemory` (threaded build). */
type EmscriptenModule = { asm?: { memory?: Memory }; wasmMemory?: Memory };

/** The wasm backend with the method that gives a tensor's byte offset in the heap. */
export type HeapBackend = WasmBackend & { getMemoryOffset(dataId: object): number };

/** The wasm backend's heap as a WebAssembly.Memory, or null where the backend does not expose it. */
export function wasmHeapMemory(backend: WasmBackend): Memory | null {
  const mod = (backend as unknown as { wasm?: EmscriptenModule }).wasm;
  return mod?.wasmMemory ?? mod?.asm?.memory ?? null;
}

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * A kernel module instantiated on this backend's heap, cached per heap in `cache`; `plain` and `shared` are its two
 * builds (base64) for the stock and the threaded backend. Null where SIMD128 is missing or the heap is unreachable
 * (callers then take another route).
 */
export function heapKernel<T>(backend: WasmBackend, plain: string, shared: string, cache: WeakMap<object, T | null>): T | null {
  const memory = wasmHeapMemory(backend);
  if (!memory) return null;
  let k = cache.get(memory);
  if (k === undefined) {
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      if (!wasm) throw new Error('no WebAssembly');
      const isShared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
      // under 1 KB: synchronous compilation is allowed everywhere (browsers cap it at 4 KB on the main thread).
      k = new wasm.Instance(new wasm.Module(decodeBase64(isShared ? shared : plain)), { env: { memory } }).exports as T;
    } catch {
      k = null;
    }
    cache.set(memory, k);
  }
  return k;
}
