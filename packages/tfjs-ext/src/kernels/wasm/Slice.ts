import * as tf from '@tensorflow/tfjs';
import { replaceBuiltin } from '../compose';
import type { Heap, WasmBackend } from './wasmBackend';

/**
 * Copies the box [begin, begin+size) of src (shape `shape`, row-major) into dst, one contiguous run at a time:
 * the trailing dims that are taken whole merge with the last partial dim into a single run.
 */
export function copyBox(src: Heap, shape: number[], begin: number[], size: number[], dst: Heap): void {
  const rank = shape.length;
  if (rank === 0) {
    dst[0] = src[0]!;
    return;
  }
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  let inner = rank - 1;
  while (inner > 0 && size[inner] === shape[inner]) inner--;
  const run = size[inner]! * strides[inner]!;
  const outer = size.slice(0, inner).reduce((a, b) => a * b, 1);
  const idx = new Array<number>(inner).fill(0);
  let o = 0;
  for (let n = 0; n < outer; n++) {
    let off = begin[inner]! * strides[inner]!;
    for (let d = 0; d < inner; d++) off += (begin[d]! + idx[d]!) * strides[d]!;
    dst.set(src.subarray(off, off + run), o);
    o += run;
    for (let d = inner - 1; d >= 0; d--) {
      if (++idx[d]! < size[d]!) break;
      idx[d] = 0;
    }
  }
}

/**
 * Slice for wasm reading only the sliced part. x: any shape, begin/size as tf.slice -> size.
 * The built-in copies the whole of x out of the wasm heap (readSync) on every call, so k slices of one
 * tensor (split, the gradient of concat, per-batch loops) cost k full copies.
 */
export function makeWasmSlice(builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const x = args.inputs.x!;
    if (x.dtype === 'string') return builtin.kernelFunc(args);
    const backend = args.backend as WasmBackend;
    const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
    const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.TensorInfo & { shape: number[] }, begin, size);
    const out = backend.makeOutput(size_, x.dtype);
    if (size_.every((d) => d > 0)) {
      // Views of the heap, taken after makeOutput (which may grow and so detach earlier views).
      copyBox(backend.typedArrayFromHeap(x), x.shape, begin_, size_, backend.typedArrayFromHeap(out));
    }
    return out;
  });
}
