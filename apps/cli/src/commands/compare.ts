import { spawn } from 'node:child_process';
import { Command, Option } from 'commander';
import { UserError } from '@factorgen/tfjs-ext';
import { compareBudgets, compareVariantIds, runCompare, buildCompareReport, compareMeta, writeCompareReport, writeSampleExcerpts, CompareSettingsError, type CompareState } from '@factorgen/pipelines';
import { writeCompareHtml } from '@factorgen/web';
import { positiveInt } from '../ui/flags';
import { withTrainingUi } from '../ui/training';
import { resolveThreads } from '@factorgen/tfjs-ext/node';
import { addDataOptions, backendOption, threadsOption, loadSplit, startBackend, note, printJson, type DataFlags } from './common';

/** The flag each recorded compare setting comes from, for the one-line refusal. */
const settingFlag = { dataset: '--dataset', budget: '--budget', bits: '--bits', generation: '--no-generation', seeds: '--seeds', variants: '--variants', format: '--out' } as const;

export function registerCompare(program: Command): void {
  const cmd = program
    .command('compare')
    .description('vq vs factorized tokenizers and their generators over paired seeds: intervals and verdicts in report.md/html/json; rerun to continue');
  addDataOptions(cmd);
  cmd
    .requiredOption('--out <dir>', 'compare folder: every run, and the report (the same command again continues there)')
    .addOption(new Option('--budget <name>', 'smoke: checks that every stage runs; small: a short look (aim: 5 min); medium: the main question (aim: 3 h on 2 cores); large: a long run or a GPU; steps, seeds and measured times: docs/compare.md').choices(Object.keys(compareBudgets)).default('medium'))
    .option('--seeds <n>', "paired seeds (default: the budget's: smoke 2, small 2, medium 3, large 5)", positiveInt)
    .option('--variants <ids>', `variants, comma-separated (default: the budget's; baselines are added): ${compareVariantIds.join(', ')}`, (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--bits <n>', 'bits per position of the single-codebook baseline (V = 2^bits), 2 to 16', positiveInt, 10)
    .option('--no-generation', 'tokenizers only: no encoding, generator training or sample scores')
    .option('--jobs <n>', 'runs side by side in n processes of 1 thread each (results equal a --jobs 1 --threads 1 compare); auto: the cores the load average leaves free (two 1-thread trainings side by side took 30 s where the same two on 2 threads took 43, docs/compare.md)', parseJobs, 'auto' as const)
    .addOption(new Option('--part <i/n>', 'internal: run part i of n (a --jobs child)').hideHelp().argParser(parsePart))
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & { out: string; budget: keyof typeof compareBudgets; seeds?: number; variants?: string[]; bits: number; generation: boolean; jobs: number | 'auto'; part?: { index: number; count: number }; backend: 'auto'; threads: number | 'auto' }) => {
      const budget = compareBudgets[f.budget];
      const unknown = (f.variants ?? []).find((v) => !(compareVariantIds as readonly string[]).includes(v));
      if (unknown !== undefined) throw new UserError(`--variants: unknown variant "${unknown}" (choose from ${compareVariantIds.join(', ')})`);
      if (f.bits < 2 || f.bits > 16) throw new UserError(`--bits ${f.bits}: must be between 2 and 16`);
      const backend = await startBackend(f.backend, f.threads);
      const train = await loadSplit(f, 'train');
      const test = await loadSplit(f, 'test');
      const command = `factorgen ${process.argv.slice(2).join(' ')}`;
      const report = async (state: CompareState) => {
        await writeSampleExcerpts(f.out, state.runs, { classNames: test.classNames, height: test.height, channels: test.channels });
        const r = buildCompareReport(state, compareMeta(state, { command, backend: backend.name, threads: backend.threads }));
        return { files: [...writeCompareReport(f.out, r), writeCompareHtml(f.out, r)], comparisons: r.summary.comparisons };
      };
      const request = { out: f.out, budget, seeds: f.seeds ?? budget.seeds, variants: f.variants, bits: f.bits, generation: f.generation, train, test, log: note,
        training: <R>(t: Parameters<typeof withTrainingUi<R>>[0]) => withTrainingUi(t, { resumeHint: 'run the same compare command again to continue' }) };
      if (f.part) {
        // A --jobs child: ends with the process that started it.
        process.on('disconnect', () => process.exit(1));
        // The channel must not keep this process alive once its part is done.
        process.channel?.unref();
        await runCompare({ ...request, part: f.part });
        return;
      }
      try {
        const jobs = f.jobs === 'auto' ? resolveThreads('auto') : f.jobs;
        if (f.jobs === 'auto' && jobs > 1) note(`--jobs auto: ${jobs} processes side by side (the cores the load average leaves free)`);
        const parts = jobs > 1 ? { count: jobs, start: startPart } : undefined;
        const state = await runCompare({ ...request, parts, onRunDone: async (s) => { await report(s); } });
        const { files, comparisons } = await report(state);
        note(`report: ${files.join(', ')}`);
        printJson({ report: files, verdicts: comparisons.map((c) => ({ variant: c.variant, baseline: c.baseline, metric: c.metric, verdict: c.verdict })) });
      } catch (e) {
        if (!(e instanceof CompareSettingsError)) throw e;
        const flag = settingFlag[e.setting];
        throw new UserError(`${flag}: ${f.out} holds a compare started with ${e.setting} ${JSON.stringify(e.recorded)} (asked: ${JSON.stringify(e.requested)}); rerun with the same flags to continue it, or choose another --out`);
      }
    });
}

function parseJobs(v: string): number | 'auto' {
  if (v === 'auto') return 'auto';
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 64) throw new UserError(`--jobs ${v}: a whole number from 1 to 64, or auto`);
  return Number(v);
}

function parsePart(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m || Number(m[1]) >= Number(m[2])) throw new UserError(`--part ${v}: expected i/n with i < n`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/** Runs part `index` of `count` as a child process of the same command on 1 thread; its stage lines are passed on. */
function startPart(index: number, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), '--jobs', '1', '--threads', '1', '--part', `${index}/${count}`];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let tail = '';
    child.stderr!.on('data', (d: Buffer) => {
      const lines = (tail + d.toString()).split('\n');
      tail = lines.pop()!;
      // Stage lines and errors; the progress lines of two trainings would interleave into noise.
      for (const l of lines) if (/^(\[\d|plan|factorgen:)/.test(l)) note(`part ${index + 1}/${count}: ${l}`);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new UserError(`--jobs: part ${index + 1} of ${count} stopped (${signal ?? `exit ${code}`}); run the same command again to continue`))));
  });
}
