import { heapColumnSumSharedWasm, heapColumnSumWasm } from './heapColumnSumWasm';
import type { WasmBackend } from './slice';

/**
 * Column sums on WebAssembly SIMD128 working in the wasm backend's heap itself (heapColumnSum.wat imports tfjs's
 * memory): out[c] = sum_r x[r, c] in row order, bit-identical to the built-in Sum over leading axes.
 */
type Exports = { colsum: (x: number, out: number, R: number, C: number) => void };

/** A WebAssembly.Memory as far as it is used here (the project's TypeScript libs declare no WebAssembly global). */
type Memory = { buffer: ArrayBuffer | SharedArrayBuffer };
type WasmApi = { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: object) => { exports: unknown } };

/** The emscripten module behind the wasm backend: its memory is `asm.memory` (stock build) or `wasmMemory` (threaded build). */
type EmscriptenModule = { asm?: { memory?: Memory }; wasmMemory?: Memory };

/** One instance per heap (a process has one wasm backend, but tests may build more). */
const instances = new WeakMap<Memory, Exports | null>();

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The wasm backend's heap as a WebAssembly.Memory, or null where the backend does not expose it. */
export function wasmHeapMemory(backend: WasmBackend): Memory | null {
  const mod = (backend as unknown as { wasm?: EmscriptenModule }).wasm;
  return mod?.wasmMemory ?? mod?.asm?.memory ?? null;
}

/** The kernel instantiated on this backend's heap, or null (no SIMD128, no reachable heap): callers use another route. */
export function heapColumnSumKernel(backend: WasmBackend): Exports | null {
  const memory = wasmHeapMemory(backend);
  if (!memory) return null;
  let k = instances.get(memory);
  if (k === undefined) {
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      if (!wasm) throw new Error('no WebAssembly');
      const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
      // under 1 KB: synchronous compilation is allowed everywhere (browsers cap it at 4 KB on the main thread).
      const mod = new wasm.Module(decodeBase64(shared ? heapColumnSumSharedWasm : heapColumnSumWasm));
      k = new wasm.Instance(mod, { env: { memory } }).exports as Exports;
    } catch {
      k = null;
    }
    instances.set(memory, k);
  }
  return k;
}
