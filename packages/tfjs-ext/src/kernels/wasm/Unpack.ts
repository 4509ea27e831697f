import * as tf from '@tensorflow/tfjs';
import { replaceBuiltin } from '../compose';
import { copyBox } from './Slice';
import type { WasmBackend } from './wasmBackend';

/**
 * Unpack (tf.unstack) for wasm, copying each part straight from the heap. x: [..., n (axis), ...] -> n tensors
 * without that axis. The built-in slices with its internal Slice, which copies all of x per part.
 */
export function makeWasmUnpack(builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const x = args.inputs.value!;
    if (x.dtype === 'string') return builtin.kernelFunc(args);
    const backend = args.backend as WasmBackend;
    const { axis } = args.attrs as unknown as tf.UnpackAttrs;
    const $axis = axis < 0 ? axis + x.shape.length : axis;
    const n = x.shape[$axis]!;
    const outShape = x.shape.filter((_, d) => d !== $axis);
    const size = [...x.shape];
    size[$axis] = 1;
    const begin = new Array<number>(x.shape.length).fill(0);
    return Array.from({ length: n }, (_, i) => {
      begin[$axis] = i;
      const out = backend.makeOutput(outShape, x.dtype);
      if (outShape.every((d) => d > 0)) copyBox(backend.typedArrayFromHeap(x), x.shape, begin, size, backend.typedArrayFromHeap(out));
      return out;
    });
  });
}
