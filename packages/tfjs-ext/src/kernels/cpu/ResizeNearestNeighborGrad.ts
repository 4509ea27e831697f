import type * as tf from '@tensorflow/tfjs';
import { makeResizeNearestNeighborGrad } from '../shared/ResizeNearestNeighborGrad';

/** ResizeNearestNeighborGrad for cpu: the shared loop (the built-in is wrong for batch > 1). */
export function makeCpuResizeNearestNeighborGrad(): tf.KernelConfig {
  return makeResizeNearestNeighborGrad('cpu');
}
