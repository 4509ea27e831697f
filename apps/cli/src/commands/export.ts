import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { exportCheckpoint, defaultExportContent, type ExportContent, resolveCheckpointDir } from '@factorgen/train';
import { hasCheckpoint, checkFolder, describeReadError, refuseRunCheckpoint, isTrainingCheckpoint, checkOutputDir } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { CHECKPOINT_FORMAT, LEGACY_CHECKPOINT_FORMAT, type LoadedCheckpoint } from '@factorgen/formats';
import { tokenizerExport } from '@factorgen/tokenizer';
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

/**
 * What export writes of a checkpoint: a tokenizer without its training-only tensors (discriminator, code-usage window,
 * alignment heads), recording its id; any other model with its EMA weights. `--tokenizer-path` is added to `extra`.
 */
function exportContent(ck: LoadedCheckpoint, tokenizerPath: string | undefined): ExportContent {
  const c = ck.kind === 'tokenizer' ? tokenizerExport(ck) : defaultExportContent(ck);
  return tokenizerPath ? { ...c, extra: { ...c.extra, tokenizerPath } } : c;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('copy a trained model (run or checkpoint folder) without its training state (optimizer; for a tokenizer also discriminator, code-usage window, alignment heads), e.g. into pretrained/')
    .requiredOption('--from <dir>', 'run or checkpoint folder')
    .requiredOption('--to <dir>', 'destination checkpoint folder (not inside a training run)')
    .option('--tokenizer-path <path>', 'for a generator: where its tokenizer will live (recorded for `sample`)')
    .addOption(
      new Option('--format <name>', 'weight files: safetensors (config.json + model.safetensors) or factorgen (the legacy config.json + weights.bin, for older factorgen readers)')
        .choices(['safetensors', 'factorgen'])
        .default('safetensors'),
    )
    .option('--overwrite', 'replace an earlier export in --to', false)
    .action(async (f: { from: string; to: string; tokenizerPath?: string; format: 'safetensors' | 'factorgen'; overwrite: boolean }) => {
      // Export only copies tensors: the plain cpu backend, started quietly (no tfjs banner, no backend line).
      await initBackend('cpu');
      if (!hasCheckpoint(resolveCheckpointDir(f.from))) {
        checkFolder(f.from); // missing or a file: say so
        throw new UserError(`--from ${f.from}: holds no checkpoint (no config.json or checkpoint/config.json)`);
      }
      checkExportTarget(f.from, f.to, f.overwrite);
      checkOutputDir(path.dirname(path.resolve(f.to)), '--to');
      const format = f.format === 'factorgen' ? LEGACY_CHECKPOINT_FORMAT : CHECKPOINT_FORMAT;
      const { bytes, sourceBytes } = await exportCheckpoint(f.from, f.to, (ck) => exportContent(ck, f.tokenizerPath), format);
      note(`exported ${f.from} to ${f.to} (${(bytes / 1e6).toFixed(1)} MB of weights; the source held ${(sourceBytes / 1e6).toFixed(1)} MB)`);
      printJson({ to: f.to, format: f.format, bytes, sourceBytes });
    });
}
