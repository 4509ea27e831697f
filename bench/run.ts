import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchKernels } from './kernels';
import { benchModels, countParams, modelsTable, parseModelFlags, workloads, type BackendModels, type Workload, type WorkloadResult } from './models';
import { benchTable, tableRows, tableText } from './table';

/**
 * Entry of `npm run bench`: kernel GFLOP/s, model throughput per backend (bench/models.ts) and, when
 * `/usr/bin/python3 -c "import torch"` works, the same models in PyTorch (bench/torch_bench.py, 1 and 2 threads)
 * with our/PyTorch ratios. Prints tables on stderr and one JSON object on stdout, also written to
 * bench/results/latest.json.
 *
 * Flags: --quick (smoke run), --no-cpu (skip the tfjs cpu backend), --backends wasm,cpu, --threads 1,2 (wasm thread
 * counts, default 1,2), --no-torch, --no-kernels,
 * --torch-omp-passive (OMP_WAIT_POLICY=PASSIVE for PyTorch: use on a busy machine, where spinning OpenMP threads make
 * its 2-thread runs ~10x slower), --no-table (skip the issue-10 table of CLI runs, bench/table.ts), --only-table.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';
const argv = process.argv.slice(2);
const flags = parseModelFlags(argv);
const log = (line: string) => process.stderr.write(line + '\n');
const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d;

type TorchRun = Partial<Record<Workload, (WorkloadResult & { threads: number }) | { error: string }>>;
type TorchResult = {
  params: { tokenizer: number; generator: number } & Record<string, number>;
  runs: Record<string, TorchRun>;
  blas: string;
  referenceBlas: boolean;
  ompWaitPolicy: string;
};

function torchAvailable(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
  return r.status === 0;
}

/** Runs bench/torch_bench.py (its progress lines pass through to stderr) and parses its JSON. */
function runTorch(quick: boolean, ompPassive: boolean, only?: string[]): Promise<TorchResult> {
  const args = [path.join(here, 'torch_bench.py'), '--threads', '1,2', ...(quick ? ['--quick'] : []), ...(ompPassive ? ['--omp-passive'] : []), ...(only ? ['--workloads', only.join(',')] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as TorchResult);
      else reject(new Error(`torch_bench.py exited with ${code}`));
    });
  });
}

const ok = (r: unknown): r is WorkloadResult => typeof r === 'object' && r !== null && 'itemsPerSecond' in r;

/**
 * ours / PyTorch for every workload both sides ran: wall-clock rates (the headline) and rates per CPU-second
 * (steadier on a shared machine; for 2 threads this counts both threads' CPU time).
 */
function ratios(ours: BackendModels, torch: TorchRun): Record<string, { ours: number; pytorch: number; ratio: number; perCpuSecondRatio: number; unit: string }> {
  const out: Record<string, { ours: number; pytorch: number; ratio: number; perCpuSecondRatio: number; unit: string }> = {};
  for (const w of workloads) {
    const a = ours[w];
    const b = torch[w];
    if (!ok(a) || !ok(b)) continue;
    out[w] = {
      ours: a.itemsPerSecond,
      pytorch: b.itemsPerSecond,
      ratio: round(a.itemsPerSecond / b.itemsPerSecond),
      perCpuSecondRatio: round(a.itemsPerCpuSecond / b.itemsPerCpuSecond),
      unit: `${a.unit}/s`,
    };
  }
  return out;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((v, c) => (v ?? '').padEnd(widths[c])).join('  ')).join('\n');
}

const t0 = performance.now();
const loadStart = os.loadavg().map((l) => round(l, 2));
const backends = flags.backends ?? ['tensorflow', 'wasm', 'cpu'];
const onlyTable = argv.includes('--only-table');
// The table's shares need the wasm matMul rate: measured even with --only-table.
const kernels = argv.includes('--no-kernels') ? { skipped: '--no-kernels' } : await benchKernels(onlyTable ? ['wasm'] : backends);
const params = await countParams();
const models = onlyTable
  ? { results: [] as BackendModels[], skipped: '--only-table' }
  : ((await benchModels({ quick: flags.quick, backends, threads: flags.threads })) as { results: BackendModels[] });
if (!onlyTable) log('\n' + modelsTable(models));

type KernelTiming = { gflops: number; gflopsPerCpuSecond: number };
const wasmMatmul = (kernels as { results?: { backend: string; matmul?: KernelTiming }[] }).results?.find((r) => r.backend === 'wasm')?.matmul;
const issueTable = argv.includes('--no-table') ? { skipped: '--no-table' } : await benchTable({ quick: flags.quick, matmul: wasmMatmul, log, threads: flags.threads ?? [1, 2] });
const tableIds = tableRows('').map((r) => r.id);

let pytorch: TorchResult | { skipped: string } | { error: string };
let torchTable: TorchResult | { skipped: string } | { error: string } = { skipped: 'no PyTorch' };
if (argv.includes('--no-torch')) pytorch = { skipped: '--no-torch' };
else if (!torchAvailable()) pytorch = { skipped: `${PYTHON} -c "import torch" failed (apt-get install python3-torch)` };
else {
  if (onlyTable) pytorch = { skipped: '--only-table' };
  else {
    try {
      pytorch = await runTorch(flags.quick, argv.includes('--torch-omp-passive'));
    } catch (e) {
      pytorch = { error: (e as Error).message };
    }
  }
  if (!('skipped' in issueTable)) {
    try {
      torchTable = await runTorch(flags.quick, argv.includes('--torch-omp-passive'), tableIds);
    } catch (e) {
      torchTable = { error: (e as Error).message };
    }
  }
}
if ('rows' in issueTable) {
  const runs = 'runs' in torchTable ? torchTable.runs : undefined;
  log(`\nissue-10 table (wasm; shares against the 1-thread matMul ${wasmMatmul ? `${wasmMatmul.gflops} GFLOP/s, ${wasmMatmul.gflopsPerCpuSecond}/cpu-s` : 'not measured'}; load ${issueTable.loadavg.start[0]} at start):\n` + tableText(issueTable.rows, runs as Parameters<typeof tableText>[1]));
  if ('params' in torchTable) {
    for (const r of issueTable.rows) {
      const theirs = torchTable.params[r.id];
      if (theirs !== undefined && theirs !== r.params) log(`warning: ${r.id}: parameter counts differ (ours ${r.params}, PyTorch ${theirs})`);
    }
  }
}

let comparison: object = { skipped: 'no PyTorch results' };
if ('runs' in pytorch) {
  // Ours = the fastest backend present: tfjs-node when it loads, else wasm (single-threaded).
  const ours = models.results.find((r) => r.backend === 'tensorflow' && !r.error) ?? models.results.find((r) => r.backend === 'wasm' && !r.error);
  const rows = [['workload', 'unit', 'ours', 'torch 2 thr', 'ratio', 'torch 1 thr', 'ratio', 'cpu-s ratio (2 thr)']];
  const vs2 = ours && pytorch.runs['2'] ? ratios(ours, pytorch.runs['2']) : {};
  const vs1 = ours && pytorch.runs['1'] ? ratios(ours, pytorch.runs['1']) : {};
  for (const w of workloads) {
    const a = vs2[w];
    const b = vs1[w];
    if (!a && !b) continue;
    rows.push([w, (a ?? b)!.unit, String((a ?? b)!.ours), String(a?.pytorch ?? '-'), String(a?.ratio ?? '-'), String(b?.pytorch ?? '-'), String(b?.ratio ?? '-'), String(a?.perCpuSecondRatio ?? '-')]);
  }
  log(`\nours (${ours?.backend ?? 'none'}) / PyTorch ${pytorch.blas.includes('openblas') ? '(OpenBLAS)' : `(BLAS ${pytorch.blas})`}:\n` + table(rows));
  const warnings: string[] = [];
  if (pytorch.referenceBlas) warnings.push("PyTorch uses Debian's reference BLAS (~20x slower matMul): apt-get install libopenblas0-pthread for a fair baseline");
  // The 1-minute load before anything of ours ran: others' work on the cores skews every figure, PyTorch's 2 threads most.
  if (loadStart[0] > 0.25 * os.cpus().length) {
    warnings.push(
      `machine busy at start (load ${loadStart[0]} on ${os.cpus().length} cores): wall-clock rates are unreliable` +
        (pytorch.ompWaitPolicy === 'PASSIVE' ? '' : '; PyTorch 2-thread runs spin-wait (rerun on an idle machine, or with --torch-omp-passive)'),
    );
  }
  for (const w of warnings) log(`warning: ${w}`);
  comparison = {
    ours: ours?.backend ?? null,
    baseline: 'pytorch with torch.set_num_threads(2) (both cores of this machine); 1-thread figures alongside',
    note: 'ratio = our items/s over PyTorch items/s from this same run; > 1 means we are faster',
    blas: pytorch.blas,
    ompWaitPolicy: pytorch.ompWaitPolicy,
    warnings,
    vsTorch2Threads: vs2,
    vsTorch1Thread: vs1,
    params: {
      ours: params,
      pytorch: pytorch.params,
      match: params.tokenizer === pytorch.params.tokenizer && params.generator === pytorch.params.generator,
    },
  };
}

const result = {
  date: new Date().toISOString(),
  command: `npm run bench${argv.length ? ' -- ' + argv.join(' ') : ''}`,
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', node: process.version, loadavg: { start: loadStart, end: os.loadavg().map((l) => round(l, 2)) } },
  seconds: round((performance.now() - t0) / 1000, 1),
  params,
  kernels,
  models,
  pytorch,
  comparison,
  table: issueTable,
  pytorchTable: torchTable,
};
const json = JSON.stringify(result, null, 2);
const outDir = path.join(here, 'results');
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, 'latest.json'), json + '\n');
log(`\nwrote ${path.relative(process.cwd(), path.join(outDir, 'latest.json'))} (${result.seconds} s)`);
console.log(json);
