import * as tf from '@tensorflow/tfjs';
import { replaceBuiltin } from '../compose';

/**
 * Cast for wasm: to the dtype x already has, a new handle on x's buffer (reference-counted, as Reshape does) instead
 * of the built-in's copy. tfjs's gradients cast their saved operands to float32 (Mul, Square, Sqrt, ...), so a
 * tokenizer training step ran ~160 such full-size copies. Other casts go to the built-in. No gradient change.
 */
export function makeWasmCast(builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const x = args.inputs.x!;
    const { dtype } = args.attrs as unknown as tf.CastAttrs;
    if (dtype !== x.dtype || x.dtype === 'string' || x.dtype === 'complex64') return builtin.kernelFunc(args);
    (args.backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
}
