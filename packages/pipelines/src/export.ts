import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportCheckpoint, defaultExportContent, type ExportContent, resolveCheckpointDir } from '@factorgen/train';
import { checkFolder, checkOutputDir, describeReadError, hasCheckpoint, isTrainingCheckpoint, refuseRunCheckpoint } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { CHECKPOINT_FORMAT, LEGACY_CHECKPOINT_FORMAT, type LoadedCheckpoint } from '@factorgen/formats';
import { tokenizerExport } from '@factorgen/tokenizer';

export type ExportRequest = {
  /** Run or checkpoint folder. */
  from: string;
  /** Destination checkpoint folder (not inside a training run). */
  to: string;
  /** For a generator: where its tokenizer will live (recorded for sampling). */
  tokenizerPath?: string;
  /** safetensors (config.json + model.safetensors) or factorgen (the legacy config.json + weights.bin). */
  format: 'safetensors' | 'factorgen';
  /** Replace an earlier export in `to`. */
  overwrite?: boolean;
};

export type ExportResult = { to: string; format: 'safetensors' | 'factorgen'; bytes: number; sourceBytes: number };

/**
 * Where export may write: not into a training run (only the run writes its checkpoint: export would drop its optimizer
 * state), not over the checkpoint being exported, and over an earlier export only with `overwrite`.
 */
function checkExportTarget(from: string, to: string, overwrite: boolean): void {
  const src = path.resolve(resolveCheckpointDir(from));
  const err = (cause: string) => new UserError(cause, { field: 'to', value: to });
  if (path.resolve(to) === src) throw err(`is the checkpoint being exported (\`from\` ${from}); choose another folder`);
  refuseRunCheckpoint(to, 'to');
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(to, { throwIfNoEntry: false });
  } catch (e) {
    throw err(describeReadError(e, 'folder')); // a file on the way (ENOTDIR)
  }
  if (!st) return;
  if (!st.isDirectory()) throw err('is a file, not a folder');
  if (isTrainingCheckpoint(to)) throw err('holds a training checkpoint (with optimizer state), which export would replace; choose another folder');
  const names = fs.readdirSync(to);
  if (names.length === 0) return;
  if (!hasCheckpoint(to)) throw err('is not empty and holds no checkpoint (refusing to replace it)');
  if (!overwrite) throw err('already holds a checkpoint; pass `overwrite` to replace it or choose another folder');
}

/**
 * What export writes of a checkpoint: a tokenizer without its training-only tensors (discriminator, code-usage window,
 * alignment heads), recording its id; any other model with its EMA weights. `tokenizerPath` is added to `extra`.
 */
function exportContent(ck: LoadedCheckpoint, tokenizerPath: string | undefined): ExportContent {
  const c = ck.kind === 'tokenizer' ? tokenizerExport(ck) : defaultExportContent(ck);
  return tokenizerPath ? { ...c, extra: { ...c.extra, tokenizerPath } } : c;
}

/**
 * Copies a trained model (run or checkpoint folder) without its training state into `to`, in `format`. Returns the
 * bytes of weights written and those the source held. Errors: UserError on `from`, `to`.
 */
export async function exportModel(req: ExportRequest): Promise<ExportResult> {
  if (!hasCheckpoint(resolveCheckpointDir(req.from))) {
    checkFolder(req.from); // missing or a file: say so
    throw new UserError('holds no checkpoint (no config.json or checkpoint/config.json)', { field: 'from', value: req.from });
  }
  checkExportTarget(req.from, req.to, req.overwrite ?? false);
  checkOutputDir(path.dirname(path.resolve(req.to)), 'to');
  const format = req.format === 'factorgen' ? LEGACY_CHECKPOINT_FORMAT : CHECKPOINT_FORMAT;
  const { bytes, sourceBytes } = await exportCheckpoint(req.from, req.to, (ck) => exportContent(ck, req.tokenizerPath), format);
  return { to: req.to, format: req.format, bytes, sourceBytes };
}
