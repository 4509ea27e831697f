import * as fs from 'node:fs';
import os from 'node:os';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';

/**
 * Node shim for tfjs-backend-wasm's threaded SIMD build (`tfjs-backend-wasm-threaded-simd.wasm`, shipped in the
 * package). tfjs only uses that build in browsers; in Node 20 three things stand in the way (tfjs-backend-wasm
 * 4.22.0, dist/tf-backend-wasm.node.js):
 *  1. `WASM_HAS_MULTITHREAD_SUPPORT` is hard-wired to false in Node (tensorflow/tfjs#3830).
 *  2. The Emscripten pthread workers are started from `blob:` URLs (the worker script, and the module factory the
 *     worker imports is posted as a Blob); Node's Worker and the worker's `importScripts` (fs.readFileSync) cannot
 *     open `blob:` URLs. The factory's source also refers to the bundle's module-level names for fs, path,
 *     perf_hooks, os (`require$$0/1/3/4`) and `commonjsGlobal`, which do not exist in a worker.
 *  3. The XNNPACK thread pool is capped at `emscripten_num_logical_cores() / 2` = `os.cpus().length / 2`
 *     (tfjs-backend-wasm/src/cc/backend.cc), so a 2-core machine gets one thread.
 * The shim, around the backend's init only: records the two Blobs' text as they are made and hands out temp-file paths
 * instead of `blob:` URLs (one folder per process, removed at exit), puts a preamble defining those names in front of
 * the worker script, and reports twice the cores while the module starts.
 */

/** The tfjs-backend-wasm version this shim was written against and tested with (package.json pins it). */
export const WASM_THREADS_SHIM_VERSION = '4.22.0';

/** The threads a free core count gives: `auto` = cores minus the 1-minute load average, rounded, at least 1. */
export function freeCores(cpus = os.availableParallelism(), load1 = os.loadavg()[0] ?? 0): number {
  return Math.max(1, Math.min(cpus, Math.round(cpus - load1)));
}

/**
 * Parses a thread count, N|auto (N: integer 1..64). Throws a UserError on field `threads` otherwise.
 */
export function parseThreads(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(n) || n < 1 || n > 64) {
    throw new UserError(`"${value}" is not a whole number from 1 to 64 or auto`, { field: 'threads' });
  }
  return n;
}

/** `auto` resolved against the load now; a number is returned as it is. */
export function resolveThreads(threads: number | 'auto'): number {
  return threads === 'auto' ? freeCores() : threads;
}

type WasmModule = typeof import('@tensorflow/tfjs-backend-wasm');

/** Throws one clear error unless the installed tfjs-backend-wasm is the version the shim was written for. */
export function checkShimVersion(installed: string): void {
  if (installed !== WASM_THREADS_SHIM_VERSION) {
    throw new UserError(
      `the wasm threads shim was written for @tensorflow/tfjs-backend-wasm ${WASM_THREADS_SHIM_VERSION} but ${installed} is installed; use \`threads\` 1 or install ${WASM_THREADS_SHIM_VERSION}`,
      { field: 'threads' },
    );
  }
}

// The worker's preamble: the bundle's module-level names the factory source refers to, and a createObjectURL that
// turns the posted factory Blob into the file written for it (the worker script calls it, then importScripts).
function workerPreamble(factoryFile: string): string {
  return [
    '"use strict";',
    'globalThis.require$$0 = require("fs"); globalThis.require$$1 = require("path");',
    'globalThis.require$$3 = require("perf_hooks"); globalThis.require$$4 = require("os");',
    'globalThis.commonjsGlobal = globalThis;',
    `URL.createObjectURL = () => ${JSON.stringify(factoryFile)}; URL.revokeObjectURL = () => {};`,
    '',
  ].join('\n');
}

let tempDir: string | null = null;

function shimDir(): string {
  if (tempDir) return tempDir;
  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-wasm-threads-'));
  const dir = tempDir;
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts tfjs's wasm backend on its threaded SIMD build with `threads` XNNPACK threads (initBackend uses it for >= 2;
 * its 1 thread stays on the stock SIMD build, which is faster on one thread; 1 here is for comparisons). Call instead of `tf.setBackend('wasm')`, before the wasm backend
 * was first started in this process. Returns the thread count the backend reports.
 * Throws a UserError when the installed tfjs-backend-wasm is not the version the shim was written against.
 */
export async function startThreadedWasm(wasm: WasmModule, threads: number): Promise<number> {
  checkShimVersion(wasm.version_wasm);
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`startThreadedWasm: threads must be an integer >= 1 (got ${threads})`);
  const dir = shimDir();
  const factoryFile = path.join(dir, 'factory.cjs');
  const workerFile = path.join(dir, 'worker.cjs');

  const RealBlob = globalThis.Blob;
  const realCreate = URL.createObjectURL.bind(URL);
  const realCpus = os.cpus;
  const texts = new WeakMap<Blob, string>();
  // Records the text of the Blobs tfjs makes during init (both are built from strings).
  class RecordingBlob extends RealBlob {
    constructor(...args: ConstructorParameters<typeof RealBlob>) {
      super(...args);
      const parts = args[0];
      if (parts && parts.every((p) => typeof p === 'string')) {
        const text = parts.join('');
        texts.set(this, text);
        if (text.startsWith('var WasmBackendModuleThreadedSimd')) fs.writeFileSync(factoryFile, text);
      }
    }
  }
  globalThis.Blob = RecordingBlob;
  URL.createObjectURL = (obj: Blob) => {
    const text = texts.get(obj);
    if (text === undefined) return realCreate(obj);
    // The only URL tfjs makes is the pthread worker script's, once per worker (8 at start). Written once: rewriting the
    // file while an earlier worker is still reading it gave that worker a truncated script, and the start hung.
    if (!fs.existsSync(workerFile)) {
      fs.writeFileSync(`${workerFile}.tmp`, workerPreamble(factoryFile) + text);
      fs.renameSync(`${workerFile}.tmp`, workerFile);
    }
    return workerFile;
  };
  // Twice the threads asked for: backend.cc halves the logical core count before capping the pool.
  const cpus = realCpus();
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => cpus[i % cpus.length]!);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  try {
    if (!(await tf.setBackend('wasm'))) throw new Error('the threaded wasm backend did not start');
    await tf.ready();
  } finally {
    globalThis.Blob = RealBlob;
    URL.createObjectURL = realCreate;
    os.cpus = realCpus;
  }
  // The pool's workers would keep Node's event loop alive after the program is done (Emscripten unrefs only the
  // workers it returns to the pool): unref them all; they end with the process.
  const pthread = (tf.backend() as unknown as { wasm: { PThread?: { runningWorkers: Worker[]; unusedWorkers: Worker[] } } }).wasm.PThread;
  for (const w of [...(pthread?.runningWorkers ?? []), ...(pthread?.unusedWorkers ?? [])]) w.unref();
  return wasm.getThreadsCount();
}
