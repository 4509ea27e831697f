import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint, saveCheckpoint } from '../checkpoint';
import { resolveCheckpointDir } from './runDir';
import { preferEma } from './ema';

/**
 * Copies a run's checkpoint to `to` without optimizer state, with EMA averages (when the run kept them) as the weights and (optionally) with `extra` fields replaced:
 * what is shipped (e.g. pretrained/) is the model, not the training state. Returns the bytes of weights written.
 */
export async function exportCheckpoint(from: string, to: string, extra?: (old: object | undefined) => object): Promise<number> {
  const ck = await loadCheckpoint(resolveCheckpointDir(from));
  const params = new Map<string, tf.Tensor>();
  let bytes = 0;
  for (const [name, t] of preferEma(ck.tensors)) {
    params.set(name, tf.tensor(t.data, t.shape, t.dtype));
    bytes += t.data.byteLength;
  }
  try {
    await saveCheckpoint(to, { kind: ck.kind, config: ck.config, step: ck.step, params, extra: extra ? extra(ck.extra) : ck.extra });
  } finally {
    for (const t of params.values()) t.dispose();
  }
  return bytes;
}
