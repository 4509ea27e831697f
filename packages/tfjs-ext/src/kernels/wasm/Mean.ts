import * as tf from '@tensorflow/tfjs';
import { replaceBuiltin } from '../compose';
import { groupReduce } from '../../simd/heapGroupSum';
import type { HeapBackend } from '../../simd/heapKernel';

/**
 * Mean for wasm: over axes [1, 3] of a rank-4 float32 x (GroupNorm's statistics, [B, N, G, c] -> [B, 1, G, 1]) on
 * our heap kernel (heapGroupSum.wat: the built-in's sum order, then / (N*c)), bit-identical to the built-in, which
 * transposes x first; every other mean goes to the built-in. No gradient change: Mean's gradient is backend-independent.
 */
export function makeWasmMean(builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.MeanAttrs;
    return groupReduce(args.backend as HeapBackend, x, axis, keepDims, true) ?? builtin.kernelFunc(args);
  });
}
