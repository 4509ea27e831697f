import * as tf from '@tensorflow/tfjs';
import { replaceBuiltin } from '../compose';
import type { Heap, WasmBackend } from './wasmBackend';

/**
 * dst = x repeated reps[d] times along each axis d (x: `shape`, row-major; dst: shape[d] * reps[d]). Runs of the last
 * axis of at least 16 elements are block copies, shorter ones an element loop (GroupNorm repeats [B,1,G,1] over Cg).
 */
export function tileInto(src: Heap, shape: number[], reps: number[], dst: Heap): void {
  const rank = shape.length;
  if (rank === 0) {
    dst[0] = src[0]!;
    return;
  }
  const inStrides = new Array<number>(rank);
  inStrides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) inStrides[d] = inStrides[d + 1]! * shape[d + 1]!;
  let o = 0;
  const last = shape[rank - 1]!;
  const lastReps = reps[rank - 1]!;
  const walk = (d: number, base: number): void => {
    if (d === rank - 1) {
      for (let r = 0; r < lastReps; r++) {
        if (last >= 16) {
          dst.set(src.subarray(base, base + last), o);
          o += last;
        } else {
          for (let i = 0; i < last; i++) dst[o++] = src[base + i]!;
        }
      }
      return;
    }
    for (let r = 0; r < reps[d]!; r++) for (let i = 0; i < shape[d]!; i++) walk(d + 1, base + i * inStrides[d]!);
  };
  walk(0, 0);
}

/**
 * Tile for wasm copying in the heap itself: the built-in computes each output element's source index with a
 * division per axis (~0.2 ms for GroupNorm's 4096-element [64,1,8,1] -> [64,1,8,8], called ~100 times a tokenizer
 * step). Strings go to the built-in. No gradient change.
 */
export function makeWasmTile(builtin: tf.KernelConfig): tf.KernelConfig {
  return replaceBuiltin(builtin, (args) => {
    const x = args.inputs.x!;
    if (x.dtype === 'string') return builtin.kernelFunc(args);
    const { reps } = args.attrs as unknown as tf.TileAttrs;
    const backend = args.backend as WasmBackend;
    const out = backend.makeOutput(x.shape.map((d, i) => d * reps[i]!), x.dtype);
    // Views of the heap, taken after makeOutput (which may grow and so detach earlier views).
    if (out.shape.every((d) => d > 0)) tileInto(backend.typedArrayFromHeap(x), x.shape, reps, backend.typedArrayFromHeap(out));
    return out;
  });
}
