import * as tf from '@tensorflow/tfjs';
import { replaceBuiltin } from '../compose';
import type { WasmBackend } from './wasmBackend';

/**
 * GatherV2 (tf.gather) for wasm on axis 0 with no batch dims, the embedding lookup: one contiguous row copy per
 * index, straight from the heap. The built-in took ~7 CPU-ms for a [64, 48] lookup in a [256, 96] table (295 k
 * values; load ~8), several per cent of a small generator step's non-matmul time. Other axes, batch dims, string
 * tensors and out-of-range indices go to the built-in (its behaviour, its errors). x: [rows, ...rest], indices: int32
 * [...ind] -> [...ind, ...rest]. Its gradient is tfjs's (UnsortedSegmentSum).
 */
export function makeWasmGatherV2(builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
    const rank = x.shape.length;
    if ((axis < 0 ? axis + rank : axis) !== 0 || batchDims !== 0 || x.dtype === 'string' || indices.dtype !== 'int32' || rank === 0) {
      return builtin.kernelFunc(args);
    }
    const backend = args.backend as WasmBackend;
    const rows = x.shape[0]!;
    const row = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const n = indices.shape.reduce((a, b) => a * b, 1);
    const idx = backend.typedArrayFromHeap(indices) as Int32Array;
    for (let i = 0; i < n; i++) if (!(idx[i]! >= 0 && idx[i]! < rows)) return builtin.kernelFunc(args);
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    // Views after makeOutput: allocating may grow the heap, which detaches earlier views.
    const ids = backend.typedArrayFromHeap(indices) as Int32Array;
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    for (let i = 0; i < n; i++) {
      const r = ids[i]!;
      dst.set(src.subarray(r * row, (r + 1) * row), i * row);
    }
    return out;
  });
}
