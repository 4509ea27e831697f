import * as tf from '@tensorflow/tfjs';
import { engineInternals } from './engineTypes';

const marker = Symbol.for('factorgen.shareSaved');

/**
 * A new tensor handle on x's buffer (reference-counted; disposing one handle leaves the other valid), tracked in the
 * current tidy scope. No copy, unlike tf.clone on wasm; no tape node. x: any shape -> same.
 */
export function shareHandle<T extends tf.Tensor>(x: T): T {
  const engine = engineInternals();
  const info = engine.state.tensorInfo.get(x.dataId);
  if (!info || x.dtype === 'string' || x.dtype === 'complex64') return tf.clone(x);
  const y = engine.makeTensorFromTensorInfo({ dataId: x.dataId, shape: x.shape, dtype: x.dtype }, info.backend);
  info.backend.incRef(x.dataId);
  return y as T;
}

/**
 * Makes the tensors the tape saves for the backward pass share their data with the originals instead of copying it.
 * tfjs saves every input/output a gradient needs through `engine.clone`, which runs the Identity kernel; on the wasm
 * backend that kernel copies the buffer (on cpu it only adds a reference), so every saved activation existed twice until
 * the forward pass's tidy ended, and the saved copy lived on through the backward pass. Tensors are immutable
 * (a Variable's assign swaps its data id), so a shared, reference-counted buffer is equivalent. The gradient recorded
 * for the clone is the one tfjs records (dy cast to float32). Only `engine.clone` is replaced (the public tf.clone
 * is a separate op and still copies). Idempotent; process-global like the engine.
 */
export function shareSavedTensors(): void {
  const engine = engineInternals();
  const current = engine.clone as typeof engine.clone & { [marker]?: true };
  if (current[marker]) return;
  const original = current.bind(engine);
  const clone = (x: tf.Tensor): tf.Tensor => {
    if (!engine.state.tensorInfo.get(x.dataId) || x.dtype === 'string' || x.dtype === 'complex64') return original(x);
    const y = shareHandle(x);
    const grad = (dy: tf.Tensor) => ({ x: () => tf.cast(dy, 'float32') });
    if (engine.state.activeTape) engine.addTapeNode(engine.state.activeScope.name, { x }, [y], grad, [], {});
    return y;
  };
  (clone as typeof clone & { [marker]?: true })[marker] = true;
  engine.clone = clone;
}
