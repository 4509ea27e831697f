import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import { registerTrainingKernels, UserError } from '@factorgen/tfjs-ext';

export const pageBackends = ['webgpu', 'wasm', 'webgl', 'cpu'] as const;
export type PageBackend = (typeof pageBackends)[number];

/** What startBackend picked, for the page to show. */
export type PageBackendInfo = { name: PageBackend; detail: string };

async function tryWebgpu(): Promise<string | null> {
  // Ask for an adapter first: setBackend on a browser without a usable GPU logs errors before it gives up.
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return null;
  try {
    if (!(await gpu.requestAdapter())) return null;
    return (await tf.setBackend('webgpu')) ? 'WebGPU' : null;
  } catch {
    return null;
  }
}

async function tryWasm(wasmDir: string): Promise<string | null> {
  try {
    setWasmPaths(wasmDir);
    // One thread, like the CLI in Node (tfjs has no wasm threads there): the same kernels, so the same numbers.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    if (!(await tf.setBackend('wasm'))) return null;
    return `WebAssembly, simd=${await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')}, with factorgen's kernels`;
  } catch {
    return null;
  }
}

async function tryPlain(name: 'webgl' | 'cpu'): Promise<string | null> {
  try {
    return (await tf.setBackend(name)) ? (name === 'webgl' ? 'WebGL' : 'plain JavaScript') : null;
  } catch {
    return null;
  }
}

/**
 * Picks the page's backend: `forced` if given (the `?backend=` query), else webgpu when the browser has a GPU adapter,
 * else wasm (its .wasm files under `wasmDir`), else webgl. Registers factorgen's kernels on wasm and cpu, as the CLI
 * does, so sampling runs the same kernels as `factorgen sample --backend wasm`. Throws when nothing loads.
 */
export async function startBackend(wasmDir: string, forced?: PageBackend): Promise<PageBackendInfo> {
  tf.enableProdMode();
  const order: PageBackend[] = forced ? [forced] : ['webgpu', 'wasm', 'webgl'];
  for (const name of order) {
    const detail =
      name === 'webgpu' ? await tryWebgpu() : name === 'wasm' ? await tryWasm(wasmDir) : await tryPlain(name);
    if (detail === null) continue;
    await tf.ready();
    registerTrainingKernels(name);
    return { name, detail };
  }
  throw new UserError(
    forced ? `?backend=${forced}: this browser could not start it` : `backend: none could start in this browser (tried ${order.join(', ')})`,
  );
}
