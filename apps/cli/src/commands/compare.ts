import { Command, Option } from 'commander';
import { positiveInt } from '../ui/flags';
import { UserError } from '@factorgen/tfjs-ext';
import { budgets } from '../compare/variants';
import { runComparison, readCurves } from '../compare/run';
import { writeReport } from '../compare/report';
import { addDataOptions, backendOption, threadsOption, loadSplit, startBackend, note, printJson, type DataFlags } from './common';

export function registerCompare(program: Command): void {
  const cmd = program
    .command('compare')
    .description('train vq vs fq tokenizers (same data, grid, steps, seed), evaluate, and write a Markdown + HTML report');
  addDataOptions(cmd);
  cmd
    .requiredOption('--out <dir>', 'report folder (each variant trains in a subfolder)')
    .addOption(new Option('--budget <name>', "smoke: a check that it runs; small: took 7.8 min in a newcomer's trial on the shared 2-core machine (wasm, 1 thread); medium/large: for real runs, hours").choices(Object.keys(budgets)).default('small'))
    .option('--bits <n>', 'bits per position of the single-codebook baseline (V = 2^bits)', positiveInt, 10)
    .option('--many-k', 'also K=3 and K=8 (UniTok-style)', false)
    .option('--generators', 'also train a generator per variant and score its samples', false)
    .option('--seed <s>', 'seed shared by every variant', '0')
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & { out: string; budget: string; bits: number; manyK: boolean; generators: boolean; seed: string; backend: 'auto'; threads: number | 'auto' }) => {
      if (f.bits < 2 || f.bits > 16) throw new UserError(`--bits ${f.bits}: must be between 2 and 16`);
      await startBackend(f.backend, f.threads);
      const train = await loadSplit(f, 'train');
      const test = await loadSplit(f, 'test');
      const result = await runComparison({
        out: f.out, budget: budgets[f.budget], seed: f.seed, train, test, bits: f.bits, manyK: f.manyK, generators: f.generators, log: note,
      });
      const curves = readCurves(f.out, result.rows.map((r) => r.id), ['recon', ...Array.from({ length: 8 }, (_, k) => `usage${k}`)]);
      const files = writeReport(f.out, result, curves, {
        dataset: train.name, budget: f.budget, seed: f.seed, bits: f.bits, steps: budgets[f.budget].tokenizerSteps, batch: budgets[f.budget].batch,
        command: `factorgen ${process.argv.slice(2).join(' ')}`,
      });
      note(`report: ${files.join(', ')}`);
      printJson({ report: files, rows: result.rows });
    });
}
