import type * as tf from '@tensorflow/tfjs';
import { makeUnsortedSegmentSum } from '../shared/UnsortedSegmentSum';

/** UnsortedSegmentSum for wasm (which has none): the shared one-ScatterNd composite. */
export function makeWasmUnsortedSegmentSum(): tf.KernelConfig {
  return makeUnsortedSegmentSum('wasm');
}
