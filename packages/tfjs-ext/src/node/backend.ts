import * as tf from '@tensorflow/tfjs';
import { registerTrainingKernels } from '../register';
import { shareSavedTensors } from '../tape/shareSaved';
import { UserError } from '../errors';
import { startThreadedWasm } from './wasmThreads';
import { withNativeStderrQuiet } from './nativeStderr';
import { describeAdapter, installWebGpuGlobals, probeWebGpu, WEBGPU_INSTALL_HINT, type WebGpuAdapterInfo, type WebGpuProbe, type WebGpuRoute } from './webgpu';

export const backendChoices = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof backendChoices)[number];

/**
 * What initBackend picked: the tfjs backend name, a detail (which native package, wasm SIMD, the WebGPU adapter) and,
 * for webgpu, the adapter; `probeMs` is what looking for a WebGPU adapter cost (0 when none was looked for).
 */
export type BackendInfo = {
  choice: BackendChoice;
  name: string;
  detail: string;
  adapter?: WebGpuAdapterInfo;
  probeMs?: number;
  /** Why 'auto' did not take WebGPU (e.g. "no hardware Vulkan driver"). */
  webgpuSkipped?: string;
  /** wasm only: XNNPACK threads (1 = the stock SIMD build, >= 2 = the threaded SIMD build through wasmThreads.ts). */
  threads?: number;
  /** Threads asked for but not used: `auto` picked a backend other than wasm, which runs its own way. */
  threadsIgnored?: number;
};

export type BackendOptions = {
  /** wasm threads: 1 (default) keeps the stock SIMD build; >= 2 starts the threaded SIMD build with that many. */
  threads?: number;
};

async function tryNative(): Promise<string | null> {
  // tfjs-node(-gpu) register the 'tensorflow' backend on import; both are optional and absent on most machines.
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (await tf.setBackend('tensorflow')) return pkg;
    } catch {
      // not installed, or its native library failed to load: try the next one
    }
  }
  return null;
}

let abortFilter = false;

/**
 * Emscripten prints "Aborted(...)" through console.warn (bound when the wasm module is created) before it throws; the
 * CLI reports that error as one line itself (runCli), so that duplicate line is dropped. Installed before the module
 * loads; other warnings pass through.
 */
function dropEmscriptenAbortLine(): void {
  if (abortFilter) return;
  abortFilter = true;
  const warn = console.warn.bind(console);
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('Aborted(')) return;
    warn(...args);
  };
}

/** The thread count the wasm backend was started with in this process (its build cannot change afterwards). */
let wasmThreads: number | null = null;

async function tryWasm(threads: number): Promise<boolean> {
  dropEmscriptenAbortLine();
  if (wasmThreads !== null && wasmThreads !== threads) {
    throw new Error(`initBackend: the wasm backend already runs with ${wasmThreads} thread(s) in this process; it cannot switch to ${threads}`);
  }
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm');
  } catch {
    return false;
  }
  if (threads > 1 && wasmThreads === null) {
    const got = await startThreadedWasm(wasm, threads);
    if (got !== threads) throw new UserError(`the threaded wasm backend started with ${got} threads`, { field: 'threads', value: threads });
    wasmThreads = threads;
    return true;
  }
  try {
    const ok = await tf.setBackend('wasm');
    if (ok) wasmThreads = threads;
    return ok;
  } catch {
    return false;
  }
}

let webgpuAdapter: WebGpuAdapterInfo | null = null;

/** Registers tfjs's webgpu backend on `probe`'s adapter (once per process) and switches to it. */
async function startWebGpu(probe: WebGpuProbe | null): Promise<WebGpuAdapterInfo | null> {
  if (!tf.findBackend('webgpu')) {
    if (!probe) return null;
    installWebGpuGlobals(probe);
    // Imported only now: the module registers its backend at load time, and only if navigator.gpu exists.
    await import('@tensorflow/tfjs-backend-webgpu');
    webgpuAdapter = probe.info;
  }
  return (await tf.setBackend('webgpu')) ? webgpuAdapter : null;
}

/** Routes `--backend webgpu` tries: FACTORGEN_WEBGPU_BACKEND=vulkan or =opengl pins one, else Vulkan (Dawn's default) first. */
function webGpuRoutes(): WebGpuRoute[] {
  const pin = process.env.FACTORGEN_WEBGPU_BACKEND;
  if (pin === 'opengl') return ['opengl'];
  if (pin === 'vulkan' || pin === 'default') return ['default'];
  if (pin) throw new UserError(`FACTORGEN_WEBGPU_BACKEND: "${pin}" is not vulkan or opengl`);
  return ['default', 'opengl'];
}

/**
 * The WebGPU part of backend selection. 'auto' asks only Dawn's default route (Vulkan on Linux) for a hardware adapter
 * and says nothing when there is none; 'webgpu' takes any adapter, software included, over Vulkan then OpenGL, and
 * fails with what to install.
 */
async function tryWebGpu(choice: 'auto' | 'webgpu'): Promise<{ adapter: WebGpuAdapterInfo | null; probeMs: number; why: string }> {
  const t0 = performance.now();
  if (tf.findBackend('webgpu')) {
    if (choice === 'auto' && webgpuAdapter?.software) return { adapter: null, probeMs: 0, why: 'only a software adapter' };
    const adapter = await startWebGpu(null);
    return { adapter, probeMs: performance.now() - t0, why: adapter ? '' : 'the webgpu backend did not start' };
  }
  const routes = choice === 'auto' ? { routes: ['default'] as WebGpuRoute[], allowSoftware: false } : { routes: webGpuRoutes(), allowSoftware: true };
  let adapter: WebGpuAdapterInfo | null = null;
  let failure = '';
  // Dawn's native warnings while it finds the adapter and opens the device stay out of the terminal (FACTORGEN_VERBOSE=1 keeps them).
  await withNativeStderrQuiet(async () => {
    const { probe, why } = await probeWebGpu(routes);
    failure = why;
    try {
      adapter = await startWebGpu(probe);
      if (!adapter && probe) failure = `tfjs could not open a device on ${describeAdapter(probe.info)}`;
    } catch (e) {
      failure = `the adapter did not start: ${(e as Error).message}`;
    }
  });
  if (!adapter && choice === 'webgpu') throw new UserError(`no usable WebGPU adapter (${failure}); install ${WEBGPU_INSTALL_HINT}`, { field: 'backend', value: 'webgpu' });
  return { adapter, probeMs: performance.now() - t0, why: failure };
}

let current: BackendInfo | null = null;

/**
 * Selects the compute backend and registers the training kernels it lacks.
 * 'auto' takes the first that loads: a hardware WebGPU adapter, tfjs-node-gpu, tfjs-node, wasm, cpu (a software WebGPU
 * adapter is slower than wasm, so only 'webgpu' picks one).
 * Idempotent for the same choice; throws UserError when an explicit choice cannot load.
 */
export async function initBackend(choice: BackendChoice = 'auto', opts: BackendOptions = {}): Promise<BackendInfo> {
  if (!backendChoices.includes(choice)) {
    throw new UserError(`unknown backend "${choice}" (expected ${backendChoices.join(', ')})`, { field: 'backend' });
  }
  const threads = opts.threads ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1)) throw new UserError(`${threads} is not a whole number >= 1`, { field: 'threads' });
  if (threads > 1 && choice !== 'auto' && choice !== 'wasm') {
    throw new UserError(`only the wasm backend runs on several threads here (\`backend\` ${choice}); use \`threads\` 1 or \`backend\` wasm`, { field: 'threads', value: threads });
  }
  if (current && current.choice === choice && (current.threads ?? current.threadsIgnored ?? 1) === threads) return current;
  // Prod mode: no debug checks, and no "looks like you are running TensorFlow.js in Node.js" banner on stderr
  // (our stderr carries one-line messages); the choice of backend is printed by the CLI instead.
  tf.enableProdMode();
  let info: BackendInfo | null = null;
  let probeMs: number | undefined;
  let webgpuSkipped: string | undefined;
  if (choice === 'auto' || choice === 'webgpu') {
    const w = await tryWebGpu(choice);
    probeMs = w.probeMs;
    if (w.adapter) info = { choice, name: 'webgpu', detail: describeAdapter(w.adapter), adapter: w.adapter, probeMs };
    else webgpuSkipped = w.why;
  }
  if (!info && (choice === 'auto' || choice === 'tensorflow')) {
    const pkg = await tryNative();
    if (pkg) info = { choice, name: 'tensorflow', detail: pkg, probeMs, webgpuSkipped };
    else if (choice === 'tensorflow') {
      throw new UserError('neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be loaded', { field: 'backend', value: 'tensorflow' });
    }
  }
  if (!info && (choice === 'auto' || choice === 'wasm')) {
    if (await tryWasm(threads)) {
      const build = threads > 1 ? `, threaded build, threads=${threads}` : '';
      info = { choice, name: 'wasm', detail: `wasm simd=${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')}${build}`, probeMs, webgpuSkipped, threads };
    }
    else if (choice === 'wasm') throw new UserError('@tensorflow/tfjs-backend-wasm failed to initialize', { field: 'backend', value: 'wasm' });
  }
  if (!info) {
    await tf.setBackend('cpu');
    info = { choice, name: 'cpu', detail: 'pure JS', probeMs, webgpuSkipped };
  }
  if (threads > 1 && info.name !== 'wasm') info.threadsIgnored = threads;
  await tf.ready();
  registerTrainingKernels(info.name);
  shareSavedTensors();
  current = info;
  return info;
}

/** One line for logs: "backend: wasm (wasm simd=true)". */
export function describeBackend(info: BackendInfo): string {
  return `backend: ${info.name} (${info.detail})`;
}
