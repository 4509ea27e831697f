import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { hasCheckpoint, loadCheckpoint, type LoadedCheckpoint } from '../checkpoint';
import { MetricsLog } from '../cli/metrics';

/** A training run's folder: `checkpoint/` (the latest state, itself a loadable model) and `metrics.jsonl`. */
export type RunDir = { dir: string; checkpointDir: string; metrics: MetricsLog; resumed: LoadedCheckpoint | null };

/**
 * Opens a run folder. A new run refuses a folder that already holds a checkpoint (nothing is overwritten by accident);
 * --resume requires one and returns it, and metrics.jsonl is appended to.
 */
export async function openRunDir(dir: string, kind: string, resume: boolean): Promise<RunDir> {
  const checkpointDir = path.join(dir, 'checkpoint');
  const has = hasCheckpoint(checkpointDir);
  if (!resume && has) {
    throw new UserError(`--out ${dir}: already holds a ${kind} run; pass --resume to continue it or choose another folder`);
  }
  if (resume && !has) throw new UserError(`--resume: ${dir} holds no checkpoint to resume`);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UserError(`--out ${dir}: cannot create folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const resumed = resume ? await loadCheckpoint(checkpointDir, kind) : null;
  // On resume, lines logged after the checkpoint's step are dropped: those steps run again.
  const metrics = new MetricsLog(path.join(dir, 'metrics.jsonl'), resume, resumed ? { dropAfterStep: resumed.step } : {});
  return { dir, checkpointDir, metrics, resumed };
}

/**
 * Accepts either a run folder or its checkpoint folder and returns the checkpoint folder
 * (so `--tokenizer runs/tok` and `--tokenizer runs/tok/checkpoint` both work).
 */
export function resolveCheckpointDir(dir: string): string {
  if (fs.existsSync(path.join(dir, 'checkpoint', 'config.json'))) return path.join(dir, 'checkpoint');
  return dir;
}
