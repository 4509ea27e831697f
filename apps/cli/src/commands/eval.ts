import { Command } from 'commander';
import { positiveInt } from '../ui/flags';
import { scoreSampleFolder, scoreReconstruction, probeTokenizer } from '@factorgen/pipelines';
import { addDataOptions, backendOption, threadsOption, dataSource, startBackend, libraryNote, printJson, cliProgress, type DataFlags } from './common';

type Run = { backend: 'auto'; threads: number | 'auto' };

export function registerEval(program: Command): void {
  const ev = program.command('eval').description('FID, class accuracy, precision/recall for samples; rFID, PSNR, SSIM for reconstructions');

  const samples = ev.command('samples').description('score a sample folder (OUT/<index>-<slug>/*.png) against the test split');
  addDataOptions(samples);
  samples
    .requiredOption('--samples <dir>', 'folder in the <index>-<slug>/NNNN.png layout (from `factorgen sample` or any tool)')
    .option('--out <file>', 'also write the JSON here')
    .option('--overwrite', 'replace an existing --out file', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & Run & { samples: string; out?: string; overwrite: boolean }) => {
      await startBackend(f.backend, f.threads);
      printJson(await scoreSampleFolder({ samples: f.samples, data: dataSource(f), out: f.out, overwrite: f.overwrite, note: libraryNote, progress: cliProgress }));
    });

  const recon = ev.command('recon').description('rFID, PSNR and SSIM of a tokenizer on the test split');
  addDataOptions(recon);
  recon
    .requiredOption('--tokenizer <dir>', 'tokenizer run or checkpoint folder')
    .option('--limit <n>', 'first n test images', positiveInt, 10000)
    .option('--batch <n>', 'batch size', positiveInt, 200)
    .option('--out <file>', 'also write the JSON here')
    .option('--overwrite', 'replace an existing --out file', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & Run & { tokenizer: string; limit: number; batch: number; out?: string; overwrite: boolean }) => {
      await startBackend(f.backend, f.threads);
      const r = { tokenizer: f.tokenizer, data: dataSource(f), limit: f.limit, batch: f.batch, out: f.out, overwrite: f.overwrite, note: libraryNote, progress: cliProgress };
      printJson(await scoreReconstruction(r));
    });

  const probe = ev
    .command('probe')
    .description("what each sub-codebook knows: linear-probe class accuracy of its mean-pooled codes, and grids with one sub-codebook's tokens held fixed");
  addDataOptions(probe);
  probe
    .requiredOption('--tokenizer <dir>', 'tokenizer run or checkpoint folder')
    .option('--train-limit <n>', 'train images the probes are fitted on (the first n; encoding them is most of the time)', positiveInt, 10000)
    .option('--limit <n>', 'test images the probes are scored on and the grids take (the first n; --train-limit sets the train images)', positiveInt, 10000)
    .option('--steps <n>', 'full-batch Adam steps of each probe', positiveInt, 500)
    .option('--rows <n>', 'grid rows: images whose sub-codebook tokens are held fixed', positiveInt, 6)
    .option('--cols <n>', 'grid columns: images the other sub-codebooks come from', positiveInt, 8)
    .option('--out <dir>', 'folder for probe.json and grid-k<k>.png', 'out/probe')
    .option('--batch <n>', 'batch size', positiveInt, 200)
    .option('--overwrite', 'replace an earlier probe in --out (only the files factorgen wrote there)', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & Run & { tokenizer: string; trainLimit: number; limit: number; steps: number; rows: number; cols: number; out: string; batch: number; overwrite: boolean }) => {
      await startBackend(f.backend, f.threads);
      const { tokenizer, trainLimit, limit, steps, rows, cols, out, batch, overwrite } = f;
      printJson(await probeTokenizer({ tokenizer, data: dataSource(f), trainLimit, limit, steps, rows, cols, out, batch, overwrite, note: libraryNote, progress: cliProgress }));
    });
}
