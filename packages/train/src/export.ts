import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint, saveCheckpoint } from '@factorgen/io';
import { type CheckpointFormat, type LoadedCheckpoint, type LoadedTensor } from '@factorgen/formats';
import { resolveCheckpointDir } from './runDir';
import { preferEma } from '@factorgen/nn';

/** What an export writes of a loaded checkpoint: the weights and the `extra` fields. */
export type ExportContent = { tensors: Map<string, LoadedTensor>; extra: Record<string, unknown> };

/** The default export content: EMA averages (when the run kept them) as the weights, `extra` as it was. */
export const defaultExportContent = (ck: LoadedCheckpoint): ExportContent => ({ tensors: preferEma(ck.tensors), extra: ck.extra ?? {} });

/**
 * Copies a run's checkpoint to `to` without optimizer state, with the tensors and `extra` that `content` picks
 * (default: defaultExportContent): what is shipped (e.g. pretrained/) is the model, not the training state.
 * `format` is the checkpoint format written (default CHECKPOINT_FORMAT: model.safetensors; LEGACY_CHECKPOINT_FORMAT:
 * weights.bin for older readers); the tensors and config are the same in both.
 * Returns the bytes of weights written and the bytes of weights the source held (all its tensors, ema/ included).
 */
export async function exportCheckpoint(
  from: string,
  to: string,
  content: (ck: LoadedCheckpoint) => ExportContent = defaultExportContent,
  format?: CheckpointFormat,
): Promise<{ bytes: number; sourceBytes: number }> {
  const ck = await loadCheckpoint(resolveCheckpointDir(from));
  const { tensors, extra } = content(ck);
  const params = new Map<string, tf.Tensor>();
  let bytes = 0;
  for (const [name, t] of tensors) {
    params.set(name, tf.tensor(t.data, t.shape, t.dtype));
    bytes += t.data.byteLength;
  }
  let sourceBytes = 0;
  for (const t of ck.tensors.values()) sourceBytes += t.data.byteLength;
  try {
    await saveCheckpoint(to, { kind: ck.kind, config: ck.config, step: ck.step, params, extra, ...(format ? { format } : {}) });
  } finally {
    for (const t of params.values()) t.dispose();
  }
  return { bytes, sourceBytes };
}
