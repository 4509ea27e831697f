// Every kernel and gradient this package registers (as tfjs's register_all_kernels / register_all_gradients):
// kernels/<backend>/<KernelName>.ts per backend, gradients/<KernelName>_grad.ts.
import * as tf from '@tensorflow/tfjs';
import { comparisonGrads } from './gradients/Comparisons_grad';
import { depthToSpaceGrad } from './gradients/DepthToSpace_grad';
import { gatherNdGrad } from './gradients/GatherNd_grad';
import { stridedSliceGrad } from './gradients/StridedSlice_grad';
import { makeCpuConv2dBackpropFilter } from './kernels/cpu/Conv2DBackpropFilter';
import { makeCpuResizeNearestNeighborGrad } from './kernels/cpu/ResizeNearestNeighborGrad';
import { makeCpuUnsortedSegmentSum } from './kernels/cpu/UnsortedSegmentSum';
import { makeBatchMatMul } from './kernels/wasm/BatchMatMul';
import { makeWasmCast } from './kernels/wasm/Cast';
import { makeWasmConv2dBackpropFilter } from './kernels/wasm/Conv2DBackpropFilter';
import { makeWasmConv2dBackpropInput } from './kernels/wasm/Conv2DBackpropInput';
import { makeWasmGatherV2 } from './kernels/wasm/GatherV2';
import { makeWasmMaxPoolGrad } from './kernels/wasm/MaxPoolGrad';
import { makeWasmMean } from './kernels/wasm/Mean';
import { makeWasmResizeNearestNeighborGrad } from './kernels/wasm/ResizeNearestNeighborGrad';
import { makeWasmSlice } from './kernels/wasm/Slice';
import { makeWasmSplitV } from './kernels/wasm/SplitV';
import { makeWasmSum } from './kernels/wasm/Sum';
import { makeWasmTile } from './kernels/wasm/Tile';
import { makeWasmUnpack } from './kernels/wasm/Unpack';
import { makeWasmUnsortedSegmentSum } from './kernels/wasm/UnsortedSegmentSum';
import { makeWebGpuAddN } from './kernels/webgpu/AddN';

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
 * webgpu: AddN (the built-in fails past 7 inputs, see kernels/webgpu/AddN.ts).
 * cpu: Conv2DBackpropFilter (built-in ~40x slower), UnsortedSegmentSum (built-in loops over segments),
 * ResizeNearestNeighborGrad (built-in is wrong for batch > 1).
 */
export function registerTrainingKernels(backend: string): KernelChanges {
  registerGradients();
  const plan: [string, (builtin?: tf.KernelConfig) => tf.KernelConfig][] = [];
  if (backend === 'wasm') {
    plan.push(['Conv2DBackpropFilter', () => makeWasmConv2dBackpropFilter()]);
    plan.push(['Conv2DBackpropInput', () => makeWasmConv2dBackpropInput()]);
    plan.push(['UnsortedSegmentSum', () => makeWasmUnsortedSegmentSum()]);
    plan.push(['MaxPoolGrad', () => makeWasmMaxPoolGrad()]);
    plan.push(['ResizeNearestNeighborGrad', (builtin) => makeWasmResizeNearestNeighborGrad(builtin)]);
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
    plan.push(['Conv2DBackpropFilter', () => makeCpuConv2dBackpropFilter()]);
    plan.push(['UnsortedSegmentSum', () => makeCpuUnsortedSegmentSum()]);
    plan.push(['ResizeNearestNeighborGrad', () => makeCpuResizeNearestNeighborGrad()]);
  }
  const changes: KernelChanges = { added: [], replaced: [] };
  for (const [name, make] of plan) {
    const what = install(name, backend, make);
    if (what) changes[what].push(name);
  }
  return changes;
}
