import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsLoader } from './models';

/**
 * The issue-10 table: whole CLI training runs, as a user runs them, on the wasm backend.
 *
 * Rows: `tokenizer train` (fq 2 x 1024, d 8, base 32, mult 1,2,2, 1 block, no attention, latent 64, batch 64, with and
 * without the entropy loss, factorization pinned to `projection`, the one the issue measured) and `generator train` on
 * T = 2048 train images encoded with the shipped tokenizer (width 256 x 6, 8 heads, 2-layer AR head, MLP 704, batch 64
 * and 32, and width 192), each with `--steps 8 --log-every 1 --checkpoint-every 1000 --warmup 1` (--quick: 4 steps).
 *
 * Per row: rate from metrics.jsonl after the first two steps (wall-clock, and per process CPU-second from its
 * `cpuSeconds`), peak RSS of the process from `/usr/bin/time -f %M`, and the step's FLOPs (bench/stepProfile.ts on the
 * run's own checkpoint: 3 x the forward pass's matmul and conv FLOPs) as achieved GFLOP/s and as a share of the
 * single-thread wasm matMul rate measured in the same bench run.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const CLI = path.join(root, 'scripts', 'bin', 'factorgen.mjs');
const TIME = '/usr/bin/time';

export type TableRow = { id: string; label: string; kind: 'tokenizer' | 'generator'; batch: number; args: string[] };

const TOKENIZER_ARGS = [
  'tokenizer', 'train', '--batch', '64', '--base-channels', '32', '--channel-mult', '1,2,2', '--blocks', '1', '--no-attention',
  '--latent-channels', '64', '--sub-codebooks', '2', '--codebook-size', '1024', '--code-dim', '8', '--restart-dead-every', '0',
  '--factorize', 'projection',
];
const generatorArgs = (tokens: string, batch: number, width: number) => [
  'generator', 'train', '--tokens', tokens, '--batch', String(batch), '--width', String(width), '--depth', '6', '--heads', '8',
  '--head-layers', '2', '--mlp-hidden', '704',
];

/** The rows; ids match bench/torch_bench.py's ISSUE workloads. */
export function tableRows(tokens: string): TableRow[] {
  return [
    { id: 'tokenizerEntropy', label: 'tokenizer fq 2x1024, base 32, no attn, latent 64, batch 64 (entropy loss 0.1)', kind: 'tokenizer', batch: 64, args: TOKENIZER_ARGS },
    { id: 'tokenizerNoEntropy', label: 'same tokenizer, --entropy-weight 0', kind: 'tokenizer', batch: 64, args: [...TOKENIZER_ARGS, '--entropy-weight', '0'] },
    { id: 'generator256b64', label: 'generator width 256 x 6, 8 heads, AR head 2, MLP 704, batch 64', kind: 'generator', batch: 64, args: generatorArgs(tokens, 64, 256) },
    { id: 'generator256b32', label: 'same generator, batch 32', kind: 'generator', batch: 32, args: generatorArgs(tokens, 32, 256) },
    { id: 'generator192b64', label: 'generator width 192 x 6, batch 64', kind: 'generator', batch: 64, args: generatorArgs(tokens, 64, 192) },
  ];
}

export type TableResult = {
  id: string;
  label: string;
  /** wasm threads (`--threads`): 1 is the stock SIMD build, >= 2 the threaded build. */
  threads: number;
  command: string;
  steps: number;
  unit: 'images' | 'tokens';
  /** Items per second over steps 3..N (wall-clock) and per process CPU-second. */
  itemsPerSecond: number;
  itemsPerCpuSecond: number;
  peakRssMiB: number;
  params: number;
  /** Model GFLOP per step (3 x forward matmuls and convs) and the achieved rate. */
  gflopPerStep: number;
  gflops: number;
  gflopsPerCpuSecond: number;
  /** Achieved GFLOP/s over the wasm matMul rate of this run (wall over wall, per CPU-second over per CPU-second). */
  shareOfMatmul?: number;
  shareOfMatmulPerCpuSecond?: number;
};

function run(cmd: string, args: string[], opts: { stdout?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(opts.stdout === false ? '' : out);
      else reject(new Error(`${path.basename(args[0] ?? cmd)} ${args.slice(1, 3).join(' ')}: exit ${code}: ${(err.trim().split('\n').pop() ?? '').slice(0, 300)}`));
    });
  });
}

type MetricLine = { step: number; seconds: number; cpuSeconds?: number };

/** Rates over the logged steps after the first two: items x (last - 2) / (t_last - t_2). */
export function ratesAfterTwo(lines: MetricLine[], itemsPerStep: number): { wall: number; cpu: number; steps: number } {
  const s2 = lines.find((l) => l.step === 2);
  const last = lines[lines.length - 1];
  if (!s2 || !last || last.step <= 2) throw new Error('metrics.jsonl: need logged steps 2 and later');
  const n = last.step - 2;
  const cpu = last.cpuSeconds !== undefined && s2.cpuSeconds !== undefined ? (itemsPerStep * n) / (last.cpuSeconds - s2.cpuSeconds) : NaN;
  return { wall: (itemsPerStep * n) / (last.seconds - s2.seconds), cpu, steps: last.step };
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

/**
 * Runs every row in a temporary folder (removed afterwards) and returns the figures. `matmul`: the single-thread
 * wasm matMul rate of the same bench run (GFLOP/s wall-clock and per CPU-second), for the shares.
 */
export async function benchTable(opts: { quick: boolean; matmul?: { gflops: number; gflopsPerCpuSecond: number }; log?: (l: string) => void; only?: string[]; threads?: number[] }): Promise<{ rows: TableResult[]; errors: Record<string, string>; loadavg: { start: number[]; end: number[] } }> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const steps = opts.quick ? 4 : 8;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-bench-table-'));
  const loadStart = os.loadavg().map((l) => round(l));
  const rows: TableResult[] = [];
  const errors: Record<string, string> = {};
  try {
    const tokens = path.join(tmp, 'tokens.bin');
    const all = tableRows(tokens);
    const wanted = opts.only ? all.filter((r) => opts.only!.includes(r.id)) : all;
    if (wanted.some((r) => r.kind === 'generator')) {
      log('table: encoding 2048 train images with pretrained/tokenizer');
      await run(process.execPath, [CLI, 'tokenizer', 'encode', '--tokenizer', path.join(root, 'pretrained', 'tokenizer'), '--split', 'train', '--limit', '2048', '--out', tokens, '--backend', 'wasm'], { stdout: false });
    }
    const runs = wanted.flatMap((row) => (opts.threads ?? [1]).map((threads) => ({ row, threads })));
    for (const { row, threads } of runs) {
      const out = path.join(tmp, `${row.id}-x${threads}`);
      const timeFile = path.join(tmp, `${row.id}-x${threads}.time`);
      const args = [...row.args, '--out', out, '--steps', String(steps), '--log-every', '1', '--checkpoint-every', '1000', '--warmup', '1', '--backend', 'wasm', '--threads', String(threads)];
      const command = `factorgen ${args.join(' ').replace(tokens, 'T')}`;
      log(`table: ${row.id} x${threads}: ${command}`);
      try {
        await run(TIME, ['-f', '%M', '-o', timeFile, process.execPath, CLI, ...args], { stdout: false });
        const peakKiB = Number(fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop());
        const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricLine);
        const flops = JSON.parse((await run(process.execPath, [...tsLoader(), path.join(here, 'stepProfile.ts'), '--run', out, '--batch', String(row.batch), '--flops-only'])).trim().split('\n').pop()!) as { params: number; gflop: { model: number } };
        const itemsPerStep = row.kind === 'tokenizer' ? row.batch : row.batch * 49;
        const r = ratesAfterTwo(lines, itemsPerStep);
        const stepsPerSecond = r.wall / itemsPerStep;
        const stepsPerCpuSecond = r.cpu / itemsPerStep;
        const res: TableResult = {
          id: row.id, label: row.label, threads, command, steps: r.steps, unit: row.kind === 'tokenizer' ? 'images' : 'tokens',
          itemsPerSecond: round(r.wall), itemsPerCpuSecond: round(r.cpu), peakRssMiB: round(peakKiB / 1024, 1), params: flops.params,
          gflopPerStep: round(flops.gflop.model, 2), gflops: round(flops.gflop.model * stepsPerSecond), gflopsPerCpuSecond: round(flops.gflop.model * stepsPerCpuSecond),
        };
        if (opts.matmul) {
          res.shareOfMatmul = round(res.gflops / opts.matmul.gflops, 3);
          res.shareOfMatmulPerCpuSecond = round(res.gflopsPerCpuSecond / opts.matmul.gflopsPerCpuSecond, 3);
        }
        rows.push(res);
        log(`  ${res.itemsPerSecond} ${res.unit}/s (${res.itemsPerCpuSecond}/cpu-s), ${res.gflops} GFLOP/s (${res.gflopsPerCpuSecond}/cpu-s), peak RSS ${res.peakRssMiB} MiB`);
      } catch (e) {
        errors[`${row.id}-x${threads}`] = (e as Error).message;
        log(`  failed: ${(e as Error).message}`);
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { rows, errors, loadavg: { start: loadStart, end: os.loadavg().map((l) => round(l)) } };
}

/** Fixed-width text table of the rows, with PyTorch's rates beside ours when given (per id, 1 and 2 threads). */
export function tableText(rows: TableResult[], torch?: Record<string, Record<string, { itemsPerSecond: number; itemsPerCpuSecond: number; rssMiB: { peak: number } } | { error: string }>>): string {
  const t = (threads: string, id: string) => {
    const r = torch?.[threads]?.[id];
    return r && 'itemsPerSecond' in r ? `${r.itemsPerSecond} (${r.itemsPerCpuSecond}/cpu-s)` : '-';
  };
  const lines = [['row', 'threads', 'ours/s (per cpu-s)', 'GFLOP/s (cpu-s)', 'share of matMul (cpu-s)', 'peak RSS MiB', 'torch 1 thr', 'torch 2 thr']];
  for (const r of rows) {
    lines.push([
      r.id, String(r.threads), `${r.itemsPerSecond} (${r.itemsPerCpuSecond})`, `${r.gflops} (${r.gflopsPerCpuSecond})`,
      r.shareOfMatmul !== undefined ? `${r.shareOfMatmul} (${r.shareOfMatmulPerCpuSecond})` : '-', `${r.peakRssMiB}`, t('1', r.id), t('2', r.id),
    ]);
  }
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  return lines.map((l) => l.map((v, c) => v.padEnd(widths[c]!)).join('  ')).join('\n');
}

// The file name test keeps this block out of bundles that include this module (as bench/models.ts does).
const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1] && /table\.[cm]?[jt]s$/.test(process.argv[1]);
if (isMain) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--only');
  const t = argv.indexOf('--threads');
  const res = await benchTable({ quick: argv.includes('--quick'), only: i >= 0 ? argv[i + 1]!.split(',') : undefined, threads: t >= 0 ? argv[t + 1]!.split(',').map(Number) : undefined });
  process.stderr.write(tableText(res.rows) + '\n');
  process.stdout.write(JSON.stringify(res, null, 2) + '\n');
}
