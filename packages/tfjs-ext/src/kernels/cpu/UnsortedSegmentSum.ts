import type * as tf from '@tensorflow/tfjs';
import { makeUnsortedSegmentSum } from '../shared/UnsortedSegmentSum';

/** UnsortedSegmentSum for cpu: the shared one-ScatterNd composite (the built-in loops over segments). */
export function makeCpuUnsortedSegmentSum(): tf.KernelConfig {
  return makeUnsortedSegmentSum('cpu');
}
