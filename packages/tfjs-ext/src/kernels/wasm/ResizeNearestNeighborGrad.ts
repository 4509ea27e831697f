import type * as tf from '@tensorflow/tfjs';
import { makeResizeNearestNeighborGrad } from '../shared/ResizeNearestNeighborGrad';

/** ResizeNearestNeighborGrad for wasm: the shared loop, in the heap, keeping the built-in's setup/dispose (`builtin`, if any). */
export function makeWasmResizeNearestNeighborGrad(builtin?: tf.KernelConfig): tf.KernelConfig {
  return makeResizeNearestNeighborGrad('wasm', builtin);
}
