import * as tf from '@tensorflow/tfjs';
import { replaceBuiltin } from '../compose';
import { copyBox } from './Slice';
import type { WasmBackend } from './wasmBackend';

/**
 * SplitV (tf.split) for wasm, copying each part straight from the heap. x: any shape -> parts along `axis`.
 * The built-in slices each part with its internal Slice, which copies all of x out of the heap per part.
 */
export function makeWasmSplitV(builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const x = args.inputs.x!;
    if (x.dtype === 'string') return builtin.kernelFunc(args);
    const backend = args.backend as WasmBackend;
    const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
    const $axis = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, $axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[$axis] = s;
      const out = backend.makeOutput(size, x.dtype);
      if (size.every((d) => d > 0)) copyBox(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out));
      begin[$axis]! += s;
      return out;
    });
  });
}
