import * as tf from '@tensorflow/tfjs';
import { makeBatchMatMul } from './batchMatMul';
import { makeWasmGatherV2 } from './gatherV2';
import { comparisonGrads } from './comparisonGrads';
import { makeConv2dBackpropFilter } from './conv2dBackpropFilter';
import { makeConv2dBackpropInput } from './conv2dBackpropInput';
import { depthToSpaceGrad } from './depthToSpaceGrad';
import { gatherNdGrad } from './gatherNdGrad';
import { makeMaxPoolGrad } from './maxPoolGrad';
import { makeResizeNearestNeighborGrad } from './resizeNearestNeighborGrad';
import { makeWasmSlice } from './slice';
import { makeWasmSplitV } from './splitV';
import { stridedSliceGrad } from './stridedSliceGrad';
import { makeWasmSum } from './sum';
import { makeWasmMean } from './mean';
import { makeWasmTile } from './tile';
import { makeWasmCast } from './cast';
import { makeWasmUnpack } from './unpack';
import { makeWasmConv2dBackpropFilter } from './wasmConv2dBackpropFilter';
import { makeUnsortedSegmentSum } from './unsortedSegmentSum';
import { makeWebGpuAddN } from './addN';

// Marks on the configs we register. Symbol.for (not a module-level Set) because the kernel registry is
// process-global and this module may be loaded more than once (tests, tsx, workers): idempotency must hold anyway.
const ours = Symbol.for('factorgen.kernel');
const replaced = Symbol.for('factorgen.builtin');

type Marked = tf.KernelConfig & { [ours]?: true; [replaced]?: tf.KernelConfig };

/** What registerTrainingKernels changed for one backend: kernel names added new, and built-ins replaced. */
export type KernelChanges = { added: string[]; replaced: string[] };

/**
 * Registers `config`, replacing the built-in kernel of that name if there is one. `make` gets the built-in
 * (for wrappers). Returns 'added' | 'replaced', or null when ours is already in place.
 */
function install(kernelName: string, backendName: string, make: (builtin?: tf.KernelConfig) => tf.KernelConfig): 'added' | 'replaced' | null {
  const current = tf.getKernel(kernelName, backendName) as Marked | undefined;
  if (current?.[ours]) return null;
  const config: Marked = make(current);
  config[ours] = true;
  if (current) {
    config[replaced] = current;
    tf.unregisterKernel(kernelName, backendName);
  }
  tf.registerKernel(config);
  return current ? 'replaced' : 'added';
}

/**
 * The kernel tfjs itself registered for (kernelName, backendName), also after we replaced it; undefined if none.
 * Tests use it as the reference implementation.
 */
export function builtinKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  const current = tf.getKernel(kernelName, backendName) as Marked | undefined;
  if (!current) return undefined;
  return current[ours] ? current[replaced] : current;
}

/** Gradients tfjs lacks (backend-independent); each registered only where none exists. */
function registerGradients(): void {
  for (const config of [stridedSliceGrad, depthToSpaceGrad, gatherNdGrad, ...comparisonGrads]) {
    if (!tf.getGradient(config.kernelName)) tf.registerGradient(config);
  }
}

/**
 * Registers the kernels a backend lacks or gets wrong for training, plus missing gradients. Idempotent.
 * wasm: Conv2DBackpropFilter (missing; our SIMD128 grid kernel on large maps, ~1.5x the Conv2D composite's speed,
 * the composite elsewhere), UnsortedSegmentSum (missing); Conv2DBackpropInput, BatchMatMul (~10x faster
 * composites on XNNPACK); Slice, SplitV, Unpack (built-ins copy the whole input out of the heap per call);
 * GatherV2 on axis 0 (row copies; the built-in is ~7 CPU-ms for a small embedding lookup);
 * MaxPoolGrad (built-in is wrong for all-negative windows); ResizeNearestNeighborGrad (ignores halfPixelCenters, ~5x slower);
 * Sum over leading axes (column sums on our SIMD128 kernel in the heap, bit-identical, ~15x faster than the built-in's transpose);
 * Sum and Mean over axes [1, 3] of rank 4 (GroupNorm's statistics, our heap kernel, bit-identical, no transpose);
 * Tile (copies in the heap; the built-in divides per element per axis); Cast to the same dtype (a shared handle, no copy).
 * webgpu: AddN (the built-in fails past 7 inputs, see addN.ts).
 * cpu: Conv2DBackpropFilter (built-in ~40x slower), UnsortedSegmentSum (built-in loops over segments),
 * ResizeNearestNeighborGrad (built-in is wrong for batch > 1).
 */
export function registerTrainingKernels(backend: string): KernelChanges {
  registerGradients();
  const plan: [string, (builtin?: tf.KernelConfig) => tf.KernelConfig][] = [];
  if (backend === 'wasm') {
    plan.push(['Conv2DBackpropFilter', () => makeWasmConv2dBackpropFilter()]);
    plan.push(['Conv2DBackpropInput', () => makeConv2dBackpropInput('wasm')]);
    plan.push(['UnsortedSegmentSum', () => makeUnsortedSegmentSum('wasm')]);
    plan.push(['MaxPoolGrad', () => makeMaxPoolGrad('wasm')]);
    plan.push(['ResizeNearestNeighborGrad', (builtin) => makeResizeNearestNeighborGrad('wasm', builtin)]);
    // Replacements that wrap (or fall back to) the built-in need it registered, i.e. the wasm module loaded.
    const need = (builtin: tf.KernelConfig | undefined, name: string): tf.KernelConfig => {
      if (!builtin) throw new Error(`${name}: the wasm backend has no built-in kernel to wrap`);
      return builtin;
    };
    plan.push(['Slice', (builtin) => makeWasmSlice(need(builtin, 'Slice'))]);
    plan.push(['SplitV', (builtin) => makeWasmSplitV(need(builtin, 'SplitV'))]);
    plan.push(['Unpack', (builtin) => makeWasmUnpack(need(builtin, 'Unpack'))]);
    plan.push(['GatherV2', (builtin) => makeWasmGatherV2(need(builtin, 'GatherV2'))]);
    plan.push(['BatchMatMul', (builtin) => makeBatchMatMul('wasm', need(builtin, 'BatchMatMul'))]);
    plan.push(['Sum', (builtin) => makeWasmSum(need(builtin, 'Sum'))]);
    plan.push(['Mean', (builtin) => makeWasmMean(need(builtin, 'Mean'))]);
    plan.push(['Tile', (builtin) => makeWasmTile(need(builtin, 'Tile'))]);
    plan.push(['Cast', (builtin) => makeWasmCast(need(builtin, 'Cast'))]);
  } else if (backend === 'webgpu') {
    plan.push(['AddN', (builtin) => {
      if (!builtin) throw new Error('AddN: the webgpu backend has no built-in kernel to wrap');
      return makeWebGpuAddN(builtin);
    }]);
  } else if (backend === 'cpu') {
    plan.push(['Conv2DBackpropFilter', () => makeConv2dBackpropFilter('cpu')]);
    plan.push(['UnsortedSegmentSum', () => makeUnsortedSegmentSum('cpu')]);
    plan.push(['ResizeNearestNeighborGrad', () => makeResizeNearestNeighborGrad('cpu')]);
  }
  const changes: KernelChanges = { added: [], replaced: [] };
  for (const [name, make] of plan) {
    const what = install(name, backend, make);
    if (what) changes[what].push(name);
  }
  return changes;
}
