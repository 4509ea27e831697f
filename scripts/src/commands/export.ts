import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import {
  exportCheckpoint, hasCheckpoint, UserError, checkFolder, describeReadError, resolveCheckpointDir, refuseRunCheckpoint, isTrainingCheckpoint, checkOutputDir,
} from '@factorgen/shared';
import { note, printJson } from './common';

/**
 * Where export may write: not into a training run (only the run writes its checkpoint: export would drop its optimizer
 * state), not over the checkpoint being exported, and over an earlier export only with --overwrite.
 */
function checkExportTarget(from: string, to: string, overwrite: boolean): void {
  const src = path.resolve(resolveCheckpointDir(from));
  if (path.resolve(to) === src) throw new UserError(`--to ${to}: is the checkpoint being exported (--from ${from}); choose another folder`);
  refuseRunCheckpoint(to, '--to');
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(to, { throwIfNoEntry: false });
  } catch (e) {
    throw new UserError(`--to ${to}: ${describeReadError(e, 'folder')}`); // a file on the way (ENOTDIR)
  }
  if (!st) return;
  if (!st.isDirectory()) throw new UserError(`--to ${to}: is a file, not a folder`);
  if (isTrainingCheckpoint(to)) {
    throw new UserError(`--to ${to}: holds a training checkpoint (with optimizer state), which export would replace; choose another folder`);
  }
  const names = fs.readdirSync(to);
  if (names.length === 0) return;
  if (!hasCheckpoint(to)) throw new UserError(`--to ${to}: is not empty and holds no checkpoint (refusing to replace it)`);
  if (!overwrite) throw new UserError(`--to ${to}: already holds a checkpoint; pass --overwrite to replace it or choose another folder`);
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('copy a trained model (run or checkpoint folder) without its optimizer state, e.g. into pretrained/')
    .requiredOption('--from <dir>', 'run or checkpoint folder')
    .requiredOption('--to <dir>', 'destination checkpoint folder (not inside a training run)')
    .option('--tokenizer-path <path>', 'for a generator: where its tokenizer will live (recorded for `sample`)')
    .option('--overwrite', 'replace an earlier export in --to', false)
    .action(async (f: { from: string; to: string; tokenizerPath?: string; overwrite: boolean }) => {
      if (!hasCheckpoint(resolveCheckpointDir(f.from))) {
        checkFolder(f.from); // missing or a file: say so
        throw new UserError(`--from ${f.from}: holds no checkpoint (no config.json or checkpoint/config.json)`);
      }
      checkExportTarget(f.from, f.to, f.overwrite);
      checkOutputDir(path.dirname(path.resolve(f.to)), '--to');
      const bytes = await exportCheckpoint(f.from, f.to, (old) => (f.tokenizerPath ? { ...(old ?? {}), tokenizerPath: f.tokenizerPath } : (old ?? {})));
      note(`exported ${f.from} to ${f.to} (${(bytes / 1e6).toFixed(1)} MB of weights)`);
      printJson({ to: f.to, bytes });
    });
}
