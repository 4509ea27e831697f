import type * as tf from '@tensorflow/tfjs';

/** A tensor's values as the wasm backend's heap holds them (a view, no copy). */
export type Heap = Float32Array | Int32Array | Uint8Array;

/** The parts of the wasm backend used here (public methods of BackendWasm that KernelBackend's type omits). */
export type WasmBackend = tf.KernelBackend & {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Heap;
};
