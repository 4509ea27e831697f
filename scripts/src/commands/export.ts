import { Command } from 'commander';
import { exportCheckpoint, hasCheckpoint, UserError, resolveCheckpointDir } from '@factorgen/shared';
import { note, printJson } from './common';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('copy a trained model (run or checkpoint folder) without its optimizer state, e.g. into pretrained/')
    .requiredOption('--from <dir>', 'run or checkpoint folder')
    .requiredOption('--to <dir>', 'destination checkpoint folder')
    .option('--tokenizer-path <path>', 'for a generator: where its tokenizer will live (recorded for `sample`)')
    .action(async (f: { from: string; to: string; tokenizerPath?: string }) => {
      if (!hasCheckpoint(resolveCheckpointDir(f.from))) throw new UserError(`--from ${f.from}: no checkpoint there`);
      const bytes = await exportCheckpoint(f.from, f.to, (old) => (f.tokenizerPath ? { ...(old ?? {}), tokenizerPath: f.tokenizerPath } : (old ?? {})));
      note(`exported ${f.from} to ${f.to} (${(bytes / 1e6).toFixed(1)} MB of weights)`);
      printJson({ to: f.to, bytes });
    });
}
