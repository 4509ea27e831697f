import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@factorgen/tfjs-ext';
import { hasCheckpoint, loadCheckpoint } from '@factorgen/io';
import { type LoadedCheckpoint } from '@factorgen/formats';
import { MetricsLog } from './metrics';
import { lockOutputDir, prepareFreshOutput, readManifest, writeManifest, type OutputIo, type OutputKind } from '@factorgen/io';

/**
 * A training run's folder: `checkpoint/` (the latest state, itself a loadable model) and `metrics.jsonl`, held under
 * the folder's lock until release() (or the process's exit).
 */
export type RunDir = { dir: string; checkpointDir: string; metrics: MetricsLog; resumed: LoadedCheckpoint | null; release(): void };

export type RunDirOptions = {
  /** A fresh run into a folder holding an earlier run of the same kind replaces it (only factorgen's files). */
  overwrite?: boolean;
  /** Called with the checkpoint on --resume, before anything is written: throws when the request contradicts it. */
  checkResume?: (ck: LoadedCheckpoint) => void;
  /** Write operations (tests inject failures). */
  io?: Partial<OutputIo>;
};

/** What --resume needs before anything is read: no --overwrite, and a checkpoint in the run folder `dir`. */
export function checkResumable(dir: string, overwrite: boolean): void {
  if (overwrite) throw new UserError('cannot be combined with `resume` (it would delete the run being resumed)', { field: 'overwrite' });
  if (!hasCheckpoint(path.join(dir, 'checkpoint'))) {
    throw new UserError(`${dir} holds no checkpoint to resume${fs.existsSync(dir) ? '' : ' (no such folder)'}`, { field: 'resume' });
  }
}

/**
 * Opens a run folder under an exclusive lock (a second run on the same folder is refused, naming the first).
 * A new run refuses a non-empty folder unless `overwrite` (then only factorgen's own outputs there are removed);
 * --resume requires a checkpoint, returns it after `checkResume` accepted it, and appends to metrics.jsonl.
 */
export async function openRunDir(dir: string, kind: string, resume: boolean, opts: RunDirOptions = {}): Promise<RunDir> {
  const checkpointDir = path.join(dir, 'checkpoint');
  if (resume) checkResumable(dir, opts.overwrite ?? false);
  const lock = lockOutputDir(dir, 'out', `${kind} train`, opts.io);
  const runKind = `${kind} run` as OutputKind;
  try {
    if (!resume) prepareFreshOutput(dir, 'out', runKind, opts.overwrite ?? false);
    const resumed = resume ? await loadCheckpoint(checkpointDir, kind) : null;
    if (resumed) opts.checkResume?.(resumed);
    if (!resume || readManifest(dir)?.kind !== runKind) writeManifest(dir, runKind, ['metrics.jsonl'], opts.io);
    // On resume, lines logged after the checkpoint's step are dropped: those steps run again.
    const metrics = new MetricsLog(path.join(dir, 'metrics.jsonl'), resume, resumed ? { dropAfterStep: resumed.step } : {});
    return { dir, checkpointDir, metrics, resumed, release: lock.release };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/**
 * Accepts either a run folder or its checkpoint folder and returns the checkpoint folder
 * (so `--tokenizer runs/tok` and `--tokenizer runs/tok/checkpoint` both work).
 */
export function resolveCheckpointDir(dir: string): string {
  if (fs.existsSync(path.join(dir, 'checkpoint', 'config.json'))) return path.join(dir, 'checkpoint');
  return dir;
}
