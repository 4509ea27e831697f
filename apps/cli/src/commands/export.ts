import { Command, Option } from 'commander';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { exportModel } from '@factorgen/pipelines';
import { note, printJson } from './common';

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
      const r = await exportModel(f);
      note(`exported ${f.from} to ${f.to} (${(r.bytes / 1e6).toFixed(1)} MB of weights; the source held ${(r.sourceBytes / 1e6).toFixed(1)} MB)`);
      printJson(r);
    });
}
