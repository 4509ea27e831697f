import * as path from 'node:path';
import { Progress } from '../ui/progress';
import { Command, Option } from 'commander';
import { printableLine } from '@factorgen/io';
import { loadSplit as loadDataSplit, type DataSource } from '@factorgen/pipelines';
import { inFlagWords } from '../ui/errors';
import { backendChoices, initBackend, describeBackend, type BackendChoice, parseThreads, resolveThreads } from '@factorgen/tfjs-ext/node';
import { positiveInt, nonNegativeInt, positiveFloat, nonNegativeFloat } from '../ui/flags';
import { type ImageDataset } from '@factorgen/formats';

/** --backend auto|webgpu|tensorflow|wasm|cpu, shared by every command. */
export function backendOption(): Option {
  return new Option(
    '--backend <name>',
    'compute backend: auto takes a hardware WebGPU adapter, tfjs-node-gpu, tfjs-node, wasm, cpu in that order; webgpu also takes a software adapter',
  )
    .choices([...backendChoices])
    .default('auto');
}

/**
 * --threads N|auto, beside --backend on every command that computes: the wasm backend's threads (README: "Threads").
 * 1 keeps the stock SIMD build; auto = the cores the load average leaves free, at least 1.
 */
export function threadsOption(): Option {
  return new Option('--threads <n>', 'wasm backend threads: a number, or auto (the cores not busy by the load average, at least 1); 1 = the single-thread build')
    .argParser(parseThreads)
    .default(1);
}

/** Selects the backend and prints it once (on stderr, so stdout stays machine-readable). */
export async function startBackend(choice: BackendChoice, threads: number | 'auto' = 1): Promise<{ name: string; threads: number }> {
  const n = resolveThreads(threads);
  const info = await initBackend(choice, { threads: n });
  process.stderr.write(describeBackend(info) + '\n');
  if (threads === 'auto' && !info.threadsIgnored) note(`--threads auto: ${n} (the cores the load average leaves free)`);
  if (info.threadsIgnored) note(`--threads ${threads}: ignored, the ${info.name} backend runs its own way (only wasm takes --threads)`);
  return { name: info.name, threads: info.threadsIgnored ? 1 : n };
}

export type DataFlags = { dataset: 'fashion-mnist' | 'emoji' | 'folder'; data?: string; size?: number; channels?: number };

/** --dataset / --data / --size / --channels. */
export function addDataOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--dataset <name>', 'dataset').choices(['fashion-mnist', 'emoji', 'folder']).default('fashion-mnist'))
    .option('--data <dir>', 'dataset folder (default: the committed copy under data/; required for --dataset folder)')
    .option('--size <px>', 'image side (default: the dataset\'s own; 32 for --dataset folder); other sizes are resized and centre-cropped', positiveInt)
    .addOption(new Option('--channels <n>', 'channels (default: the dataset\'s own; 3 for --dataset folder); images are converted').choices(['1', '3']));
}

/** The dataset the flags name, as the pipelines take it. */
export function dataSource(f: DataFlags): DataSource {
  return { dataset: f.dataset, data: f.data, size: f.size, channels: f.channels === undefined ? undefined : (Number(f.channels) as 1 | 3) };
}

/** Loads one split of the dataset the flags name; a folder's class map and unused entries are noted once per folder. */
export function loadSplit(f: DataFlags, split: 'train' | 'test'): Promise<ImageDataset> {
  return loadDataSplit(dataSource(f), split, libraryNote);
}

/** Training flags shared by every trainer. */
export function addTrainOptions(cmd: Command, d: { steps: number; batch: number; lr: number; warmup: number; weightDecay?: number }): Command {
  return cmd
    .requiredOption('--out <dir>', 'run folder: checkpoint/ and metrics.jsonl go here')
    .option('--resume', 'continue the run in --out from its checkpoint', false)
    .option('--overwrite', 'a new run replaces an earlier run of the same kind in --out (only the files factorgen wrote there)', false)
    .option('--steps <n>', 'optimization steps', positiveInt, d.steps)
    .option('--batch <n>', 'batch size', positiveInt, d.batch)
    .option('--lr <x>', 'peak learning rate', positiveFloat, d.lr)
    .option('--warmup <n>', 'linear warmup steps', nonNegativeInt, d.warmup)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay (matrices only)', nonNegativeFloat, d.weightDecay ?? 0)
    .option('--clip <x>', 'clip gradients to this global norm (0 = off)', nonNegativeFloat, 1)
    .option('--seed <s>', 'seed for data order, initializers and everything random', '0')
    .option('--checkpoint-every <n>', 'write a checkpoint every n steps', positiveInt, 500)
    .option('--log-every <n>', 'write a metrics.jsonl line every n steps', positiveInt, 25)
    .addOption(backendOption())
    .addOption(threadsOption());
}

export type TrainFlags = {
  out: string; resume: boolean; overwrite: boolean; steps: number; batch: number; lr: number; warmup: number; weightDecay: number; clip: number;
  seed: string; checkpointEvery: number; logEvery: number; backend: BackendChoice; threads: number | 'auto';
};

/** Writes a line to stderr (progress and notes), keeping stdout for results. */
export function note(line: string): void {
  // Class and file names in notes come from files: control characters in them are shown, not obeyed.
  process.stderr.write(printableLine(line) + '\n');
}

/** A note or warning from library code, its backquoted fields said as flags ("`limit`" -> "--limit"). */
export function libraryNote(line: string): void {
  note(inFlagWords(line));
}

/** Prints a JSON result on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export const rel = (p: string): string => path.relative(process.cwd(), p) || '.';

/** The progress line on stderr, for pipelines that report a long phase (ProgressFactory). */
export const cliProgress = (total: number, label: string, opts: { startStep?: number; unit?: string }): Progress => new Progress(total, label, opts);
