import * as tf from '@tensorflow/tfjs';

/**
 * The parts of tfjs-core's Engine (pinned 4.22.0) that the tape utilities use. They are not in its public
 * typings; `test/tfjs-ext/tape/tape.test.ts` checks they exist and behave as assumed, so a tfjs upgrade that moves them fails
 * there first.
 */
export type TapeNode = {
  id: number;
  kernelName: string;
  outputs: tf.Tensor[];
  inputs: Record<string, tf.Tensor>;
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
};

export type TensorInfoEntry = { backend: tf.KernelBackend; bytes: number };

export type EngineInternals = {
  state: {
    activeTape: TapeNode[] | null;
    gradientDepth: number;
    kernelDepth: number;
    activeScope: { name: string };
    tensorInfo: WeakMap<object, TensorInfoEntry>;
  };
  backend: tf.KernelBackend;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T>(name: string, f: () => T): T;
  keep<T extends tf.Tensor>(t: T): T;
  clone(x: tf.Tensor): tf.Tensor;
  makeTensorFromTensorInfo(info: { dataId: object; shape: number[]; dtype: tf.DataType }, backend?: tf.KernelBackend): tf.Tensor;
  addTapeNode(
    kernelName: string,
    inputs: Record<string, tf.Tensor>,
    outputs: tf.Tensor[],
    gradientsFunc: (dy: tf.Tensor) => Record<string, () => tf.Tensor>,
    saved: tf.Tensor[],
    attrs: Record<string, unknown>,
  ): void;
};

export function engineInternals(): EngineInternals {
  return tf.engine() as unknown as EngineInternals;
}

/** The id the next tensor created will get (tensor ids only grow). */
export function nextTensorId(): number {
  return (tf.engine().constructor as unknown as { nextTensorId: number }).nextTensorId;
}
