import type * as tf from '@tensorflow/tfjs';
import { makeConv2dBackpropInput } from '../shared/Conv2DBackpropInput';

/** Conv2DBackpropInput for wasm: the shared composite (~10x faster than the built-in on XNNPACK). */
export function makeWasmConv2dBackpropInput(): tf.KernelConfig {
  return makeConv2dBackpropInput('wasm');
}
