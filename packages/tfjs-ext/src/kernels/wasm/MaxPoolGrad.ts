import type * as tf from '@tensorflow/tfjs';
import { makeMaxPoolGrad } from '../shared/MaxPoolGrad';

/** MaxPoolGrad for wasm: the shared JS loop (the built-in is wrong for all-negative windows). */
export function makeWasmMaxPoolGrad(): tf.KernelConfig {
  return makeMaxPoolGrad('wasm');
}
