import * as tf from '@tensorflow/tfjs';
import { registerTrainingKernels } from './kernels/register';
import { shareSavedTensors } from './tape/shareSaved';
import { UserError } from './errors';

export const backendChoices = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof backendChoices)[number];

/** What initBackend picked: the tfjs backend name and, for 'tensorflow', which native package. */
export type BackendInfo = { choice: BackendChoice; name: string; detail: string };

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

async function tryWasm(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

let current: BackendInfo | null = null;

/**
 * Selects the compute backend and registers the training kernels it lacks.
 * 'auto' takes the first that loads: tfjs-node-gpu, tfjs-node, wasm, cpu.
 * Idempotent for the same choice; throws UserError when an explicit choice cannot load.
 */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (!backendChoices.includes(choice)) {
    throw new UserError(`--backend: unknown backend "${choice}" (expected ${backendChoices.join(', ')})`);
  }
  if (current && current.choice === choice) return current;
  // Prod mode: no debug checks, and no "looks like you are running TensorFlow.js in Node.js" banner on stderr
  // (our stderr carries one-line messages); the choice of backend is printed by the CLI instead.
  tf.enableProdMode();
  let info: BackendInfo | null = null;
  if (choice === 'auto' || choice === 'tensorflow') {
    const pkg = await tryNative();
    if (pkg) info = { choice, name: 'tensorflow', detail: pkg };
    else if (choice === 'tensorflow') {
      throw new UserError('--backend tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be loaded');
    }
  }
  if (!info && (choice === 'auto' || choice === 'wasm')) {
    if (await tryWasm()) info = { choice, name: 'wasm', detail: `wasm simd=${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')}` };
    else if (choice === 'wasm') throw new UserError('--backend wasm: @tensorflow/tfjs-backend-wasm failed to initialize');
  }
  if (!info) {
    await tf.setBackend('cpu');
    info = { choice, name: 'cpu', detail: 'pure JS' };
  }
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
