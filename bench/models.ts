import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { defaultAdamW, disposeAdamState, initAdamState, optimizerStep, warmupCosine, type AdamState, Rng } from '@factorgen/nn';
import { initBackend, type BackendChoice } from '@factorgen/tfjs-ext/node';
import { readStepMetrics } from '@factorgen/train';
import { createTokenizer, DeviceCodeHistogram, presetFashion, tokenizerForward, type TokenizerConfig } from '@factorgen/tokenizer';
import { createGenerator, generatorLoss, makeGeneratorConfig, sample, seqLen, type GeneratorConfig } from '@factorgen/generator';

/**
 * Model-level throughput of the architectures the CLI trains by default, per backend: tokenizer training images/s,
 * generator training tokens/s (a token = one grid position holding K sub-tokens), sampling images/s with and without
 * the KV cache, plus peak RSS and tf.memory().numTensors (which must stay flat once the optimizer state exists).
 *
 * Every (backend, workload) pair runs in its own child process, so each peak RSS is that workload's alone and no
 * backend's heap (wasm memory never shrinks) inflates the next. Run directly: `npx tsx bench/models.ts [--quick]
 * [--backends wasm,cpu] [--no-cpu]`.
 */

/**
 * The default tokenizer: fq, 2 sub-codebooks of 256 codes (dim 8), base width 24, no teacher or discriminator. The
 * factorization is pinned to `projection` (what bench/torch_bench.py mirrors and the figures were measured on), not
 * whatever presetFashion defaults to.
 */
export function benchTokenizerConfig(): TokenizerConfig {
  return { ...presetFashion('fq', 2, 256, { baseChannels: 24 }), perceptualWeight: 0, adversarial: undefined, factorize: 'projection' };
}

/** The default generator: 7x7 grid, [256,256] sub-codebooks, width 128, depth 4, 1-layer AR head (preset dropouts 0.1). */
export function benchGeneratorConfig(): GeneratorConfig {
  return makeGeneratorConfig({
    subCodebookSizes: [256, 256], width: 128, depth: 4, heads: 4, mlpHidden: 384,
    headLayers: 1, headWidth: 128, headHeads: 4, headMlpHidden: 384,
  });
}

/** Batch sizes: training as the CLI (32), sampling 20 images with guidance 2 (40 rows: conditional + null class). */
export const BENCH_BATCH = { tokenizer: 32, generator: 32, sample: 20, cfgScale: 2 } as const;
/** Training lr/clip/AdamW as the CLI defaults (tokenizer lr 2e-3, generator 1e-3, clip 1, AdamW(0.9, 0.95), no decay). */
const TRAIN = { tokenizerLr: 2e-3, generatorLr: 1e-3, warmup: 100, totalSteps: 2000, clip: 1 } as const;

export const workloads = ['tokenizerTrain', 'generatorTrain', 'sampleCached', 'sampleUncached'] as const;
export type Workload = (typeof workloads)[number];

/** Warm-up calls (excluded from the timing) and timed calls of one workload, or why it is skipped. */
export type Plan = { warmup: number; runs: number } | { skip: string };

/**
 * Calls per workload. Defaults keep the whole `npm run bench` under ~10 minutes on an idle 2-core machine. The cpu
 * backend takes ~40 CPU-seconds per training step and ~12 s per cached sampling batch here, so it gets one warm-up
 * and one timed call, and no uncached sampling (~2 min a batch); --quick keeps only its cached sampling.
 */
export function planFor(backend: string, workload: Workload, quick: boolean): Plan {
  const slow = backend === 'cpu';
  if (slow && workload === 'sampleUncached') return { skip: 'not run on cpu (~2 minutes per batch)' };
  if (slow && quick && workload !== 'sampleCached') return { skip: 'not run on cpu with --quick (~40 CPU-seconds per step)' };
  if (slow || quick) return { warmup: 1, runs: slow || workload === 'sampleUncached' ? 1 : 2 };
  return { warmup: 2, runs: workload === 'sampleUncached' ? 2 : workload === 'sampleCached' ? 3 : 10 };
}

/** One workload's figures. Rates are items over the summed wall time of the timed calls. */
export type WorkloadResult = {
  workload: Workload;
  backend: string;
  detail: string;
  params: number;
  batch: number;
  /** What `items` counts: images or tokens (grid positions). */
  unit: 'images' | 'tokens';
  itemsPerCall: number;
  warmup: number;
  runs: number;
  msPerCall: { mean: number; median: number; min: number };
  itemsPerSecond: number;
  /** Process CPU time per call and items per CPU-second: closer to the idle figure when the machine is shared. */
  cpuMsPerCall: number;
  itemsPerCpuSecond: number;
  /** numTensors after building the model, after the warm-up calls (optimizer moments now exist) and at the end. */
  numTensors: { start: number; afterWarmup: number; end: number };
  /** end === afterWarmup: no tensor leaks per call. */
  tensorsFlat: boolean;
  /** Resident set size in MiB: at start (backend up, model built), at the end, and the process's peak. */
  rssMiB: { start: number; end: number; peak: number };
  seconds: number;
};

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

/** A workload made ready: `call` runs one step / one sampling batch (everything read back), `dispose` frees it. */
type Prepared = { params: number; batch: number; unit: 'images' | 'tokens'; itemsPerCall: number; call: (i: number) => Promise<void>; dispose: () => void };

/**
 * The tokenizer's training step as in trainTokenizer (minus data loading and dead-code restarts, which run every 100
 * steps): tokenizerForward -> optimizerStep, the code histogram counted on the device, and what the training loop
 * reads on an unlogged step (one NaN/Inf flag over the loss terms). Synthetic images in [-1, 1].
 */
function prepareTokenizer(): Prepared {
  const cfg = benchTokenizerConfig();
  const B = BENCH_BATCH.tokenizer;
  const tok = createTokenizer(cfg, 'bench');
  const rng = new Rng('bench/tokenizer-data');
  const n = B * cfg.imageSize * cfg.imageSize * cfg.channels;
  const batches = Array.from({ length: 4 }, () => Float32Array.from({ length: n }, () => rng.next() * 2 - 1));
  const opt: AdamState = initAdamState();
  // A 1-batch window: the per-step work of a full one (count in, count out) with a tensor count flat after warm-up.
  const hist = new DeviceCodeHistogram(cfg.quantizer.subCodebooks.map((q) => q.size), 1);
  return {
    params: tok.params.count(),
    batch: B,
    unit: 'images',
    itemsPerCall: B,
    call: async (s) => {
      const x = tf.tensor4d(batches[s % batches.length], [B, cfg.imageSize, cfg.imageSize, cfg.channels]);
      let terms: Record<string, tf.Scalar> = {};
      let indices: tf.Tensor | null = null;
      const lr = warmupCosine(s, TRAIN.tokenizerLr, TRAIN.warmup, TRAIN.totalSteps);
      const { loss, gradNorm } = optimizerStep(() => {
        const out = tokenizerForward(tok, x, { training: true });
        indices = tf.keep(out.indices);
        terms = Object.fromEntries(Object.entries(out.losses).map(([k, t]) => [k, tf.keep(t)]));
        return out.total;
      }, tok.params.vars, opt, defaultAdamW, lr, TRAIN.clip);
      hist.add(indices!);
      tf.dispose([x, indices!]);
      await readStepMetrics({ loss, gradNorm, lr, ...terms }, false);
    },
    dispose: () => {
      disposeAdamState(opt);
      tok.params.dispose();
      hist.dispose();
    },
  };
}

/**
 * The generator's training step as in trainGenerator: generatorLoss (training: dropout 0.1, class dropout 0.1) ->
 * optimizerStep, and what the training loop reads on an unlogged step (one NaN/Inf flag over loss, sub-losses and
 * accuracies). Random tokens.
 */
function prepareGenerator(): Prepared {
  const cfg = benchGeneratorConfig();
  const B = BENCH_BATCH.generator;
  const T = seqLen(cfg);
  const K = cfg.subCodebookSizes.length;
  const gen = createGenerator(cfg, 'bench');
  const rng = new Rng('bench/generator-data');
  const batches = Array.from({ length: 4 }, () => ({
    tokens: Int32Array.from({ length: B * T * K }, (_, i) => rng.int(cfg.subCodebookSizes[i % K])),
    labels: Int32Array.from({ length: B }, () => rng.int(cfg.numClasses)),
  }));
  const opt: AdamState = initAdamState();
  return {
    params: gen.params.count(),
    batch: B,
    unit: 'tokens',
    itemsPerCall: B * T,
    call: async (s) => {
      const data = batches[s % batches.length];
      const stepRng = new Rng(`bench/generator-step${s}`);
      const tokT = tf.tensor3d(data.tokens, [B, T, K], 'int32');
      let kept: tf.Scalar[] = [];
      const lr = warmupCosine(s, TRAIN.generatorLr, TRAIN.warmup, TRAIN.totalSteps);
      const { loss, gradNorm } = optimizerStep(() => {
        const out = generatorLoss(gen, tokT, data.labels, { training: true, rng: stepRng });
        kept = [...out.subAccuracy, ...out.subLosses].map((a) => tf.keep(a));
        return out.loss;
      }, gen.params.vars, opt, defaultAdamW, lr, TRAIN.clip);
      tokT.dispose();
      await readStepMetrics({ loss, gradNorm, lr, ...Object.fromEntries(kept.map((t, k) => [`m${k}`, t])) }, false);
    },
    dispose: () => {
      disposeAdamState(opt);
      gen.params.dispose();
    },
  };
}

/** sample() of 20 images (labels 0..9 twice), guidance 2, temperature 1, no top-k/top-p; untrained weights. */
function prepareSampling(useCache: boolean): Prepared {
  const cfg = benchGeneratorConfig();
  const gen = createGenerator(cfg, 'bench');
  const B = BENCH_BATCH.sample;
  const labels = Int32Array.from({ length: B }, (_, i) => i % cfg.numClasses);
  const rng = new Rng('bench/sample');
  return {
    params: gen.params.count(),
    batch: B,
    unit: 'images',
    itemsPerCall: B,
    call: async () => {
      await sample(gen, labels, { cfgScale: BENCH_BATCH.cfgScale, temperature: 1, topK: 0, topP: 1, rng, useCache });
    },
    dispose: () => gen.params.dispose(),
  };
}

function prepare(workload: Workload): Prepared {
  switch (workload) {
    case 'tokenizerTrain':
      return prepareTokenizer();
    case 'generatorTrain':
      return prepareGenerator();
    case 'sampleCached':
      return prepareSampling(true);
    case 'sampleUncached':
      return prepareSampling(false);
  }
}

/** Runs one workload in this process on `backend`: builds it, warms up, times `plan.runs` calls. */
export async function runWorkload(backend: BackendChoice, workload: Workload, plan: { warmup: number; runs: number }, threads = 1): Promise<WorkloadResult> {
  const t0 = performance.now();
  const info = await initBackend(backend, { threads });
  const w = prepare(workload);
  const startTensors = tf.memory().numTensors;
  const rssStart = process.memoryUsage().rss;
  let i = 0;
  for (; i < plan.warmup; i++) await w.call(i);
  const afterWarmup = tf.memory().numTensors;
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < plan.runs; r++, i++) {
    const c0 = process.cpuUsage();
    const s0 = performance.now();
    await w.call(i);
    wall.push(performance.now() - s0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const end = tf.memory().numTensors;
  const rssEnd = process.memoryUsage().rss;
  w.dispose();
  const total = wall.reduce((a, b) => a + b, 0);
  const cpuTotal = cpu.reduce((a, b) => a + b, 0);
  const sorted = [...wall].sort((a, b) => a - b);
  return {
    workload,
    backend: info.name,
    detail: info.detail,
    params: w.params,
    batch: w.batch,
    unit: w.unit,
    itemsPerCall: w.itemsPerCall,
    warmup: plan.warmup,
    runs: plan.runs,
    msPerCall: { mean: round(total / plan.runs), median: round(sorted[Math.floor(sorted.length / 2)]), min: round(sorted[0]) },
    itemsPerSecond: round((w.itemsPerCall * plan.runs) / (total / 1000), 3),
    cpuMsPerCall: round(cpuTotal / plan.runs),
    itemsPerCpuSecond: round((w.itemsPerCall * plan.runs) / (cpuTotal / 1000), 3),
    numTensors: { start: startTensors, afterWarmup, end },
    tensorsFlat: end === afterWarmup,
    rssMiB: { start: mib(rssStart), end: mib(rssEnd), peak: mib(process.resourceUsage().maxRSS * 1024) },
    seconds: round((performance.now() - t0) / 1000, 1),
  };
}

/** Parameter counts of the two benchmarked models (built and disposed on the current backend). */
export async function countParams(): Promise<{ tokenizer: number; generator: number }> {
  await initBackend('cpu');
  const tok = createTokenizer(benchTokenizerConfig(), 'bench');
  const tokenizer = tok.params.count();
  tok.params.dispose();
  const gen = createGenerator(benchGeneratorConfig(), 'bench');
  const generator = gen.params.count();
  gen.params.dispose();
  return { tokenizer, generator };
}

/** A backend's results, or why it was skipped. */
export type BackendModels = { backend: string; threads?: number; error?: string } & Partial<Record<Workload, WorkloadResult | { error: string } | { skipped: string }>>;

/** Whether tfjs-node(-gpu) can at least be resolved (loading may still fail; the child then reports why). */
function nativeInstalled(): boolean {
  const require = createRequire(import.meta.url);
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      // not installed
    }
  }
  return false;
}

const WORKER_FLAG = '--worker';

/** Node flags a child needs to run this file: tsx for the .ts sources, none for an esbuild bundle (the GPU machine's). */
export function tsLoader(): string[] {
  return import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [];
}

/** Runs `workload` on `backend` in a child process (this file with --worker) and parses its JSON line. */
function runChild(backend: BackendChoice, workload: Workload, quick: boolean, threads = 1): Promise<WorkloadResult> {
  const args = [...tsLoader(), fileURLToPath(import.meta.url), WORKER_FLAG, backend, workload, String(threads), ...(quick ? ['--quick'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as WorkloadResult);
      else reject(new Error(`exit ${code}: ${(err.trim().split('\n').pop() ?? '').slice(0, 300)}`));
    });
  });
}

export type ModelBenchOptions = {
  quick?: boolean;
  /** Backends to try, in order; default tensorflow (when installed), wasm, cpu. */
  backends?: BackendChoice[];
  /** wasm thread counts to run (--threads; default 1 and 2: the stock build and the threaded build on 2). */
  threads?: number[];
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
};

/** Every workload on every backend, one child process each. */
export async function benchModels(opts: ModelBenchOptions = {}): Promise<object> {
  const quick = opts.quick ?? false;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const backends = opts.backends ?? (['tensorflow', 'wasm', 'cpu'] as BackendChoice[]);
  const loadStart = os.loadavg().map((l) => round(l));
  const results: BackendModels[] = [];
  const runs = backends.flatMap((backend) => (backend === 'wasm' ? (opts.threads ?? [1, 2]).map((threads) => ({ backend, threads })) : [{ backend, threads: 1 }]));
  for (const { backend, threads } of runs) {
    if (backend === 'tensorflow' && !nativeInstalled()) {
      results.push({ backend, error: 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed' });
      continue;
    }
    const entry: BackendModels = backend === 'wasm' ? { backend, threads } : { backend };
    const label = backend === 'wasm' ? `wasm x${threads}` : backend;
    for (const workload of workloads) {
      const plan = planFor(backend, workload, quick);
      if ('skip' in plan) {
        entry[workload] = { skipped: plan.skip };
        continue;
      }
      log(`models: ${label} ${workload} (${plan.warmup} warm-up + ${plan.runs} timed)`);
      try {
        const r = await runChild(backend, workload, quick, threads);
        entry[workload] = r;
        log(`  ${r.itemsPerSecond} ${r.unit}/s, ${r.msPerCall.mean} ms/call, tensors ${r.numTensors.afterWarmup}->${r.numTensors.end}, peak ${r.rssMiB.peak} MiB`);
      } catch (e) {
        entry[workload] = { error: (e as Error).message };
        log(`  failed: ${(e as Error).message}`);
        // an unloadable backend fails every workload the same way
        if (workload === workloads[0] && backend === 'tensorflow') {
          results.push({ backend, error: (e as Error).message });
          break;
        }
      }
    }
    if (!results.some((r) => r.backend === backend && r.threads === entry.threads)) results.push(entry);
  }
  const tok = benchTokenizerConfig();
  const gen = benchGeneratorConfig();
  return {
    kind: 'models',
    quick,
    cpus: os.cpus().length,
    loadavg: { start: loadStart, end: os.loadavg().map((l) => round(l)) },
    architectures: {
      tokenizer: `fq K=2 V=256 d=8, baseChannels ${tok.baseChannels} mult [${tok.channelMult}], ${tok.blocksPerLevel} ResBlock/level, attention, latent ${tok.latentChannels}; batch ${BENCH_BATCH.tokenizer} of ${tok.imageSize}x${tok.imageSize}x${tok.channels}`,
      generator: `width ${gen.width} depth ${gen.depth} heads ${gen.heads} mlp ${gen.mlpHidden}, AR head ${gen.headLayers}x${gen.headWidth}, V [${gen.subCodebookSizes}], grid ${gen.gridH}x${gen.gridW}, rope ${gen.rope}, dropout ${gen.dropout}; train batch ${BENCH_BATCH.generator}`,
      sampling: `batch ${BENCH_BATCH.sample}, cfg ${BENCH_BATCH.cfgScale} (${2 * BENCH_BATCH.sample} rows), temperature 1`,
    },
    results,
  };
}

/** Fixed-width table of a benchModels result (one row per backend and workload). */
export function modelsTable(res: { results: BackendModels[] }): string {
  const rows = [['backend', 'workload', 'rate', 'ms/call', 'cpu-rate', 'tensors warm->end', 'peak RSS MiB']];
  for (const b of res.results) {
    if (b.error) {
      rows.push([b.backend, 'skipped', b.error.slice(0, 60), '', '', '', '']);
      continue;
    }
    const name = b.threads ? `${b.backend} x${b.threads}` : b.backend;
    for (const w of workloads) {
      const r = b[w];
      if (!r) continue;
      if ('error' in r) rows.push([name, w, `error: ${r.error.slice(0, 50)}`, '', '', '', '']);
      else if ('skipped' in r) rows.push([name, w, `skipped: ${r.skipped}`, '', '', '', '']);
      else {
        rows.push([
          name, w, `${r.itemsPerSecond} ${r.unit}/s`, `${r.msPerCall.mean}`, `${r.itemsPerCpuSecond}/cpu-s`,
          `${r.numTensors.afterWarmup}->${r.numTensors.end}${r.tensorsFlat ? '' : ' LEAK'}`, `${r.rssMiB.peak}`,
        ]);
      }
    }
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => v.padEnd(widths[c])).join('  ')).join('\n');
}

/** Command-line flags shared with run.ts: --quick, --no-cpu, --backends a,b, --threads 1,2 (wasm thread counts). */
export function parseModelFlags(argv: string[]): { quick: boolean; backends?: BackendChoice[]; threads?: number[] } {
  const quick = argv.includes('--quick');
  const i = argv.indexOf('--backends');
  let backends: BackendChoice[] | undefined = i >= 0 ? (argv[i + 1] ?? '').split(',').filter(Boolean) as BackendChoice[] : undefined;
  if (argv.includes('--no-cpu')) backends = (backends ?? ['tensorflow', 'wasm', 'cpu']).filter((b) => b !== 'cpu');
  const t = argv.indexOf('--threads');
  const threads = t >= 0 ? (argv[t + 1] ?? '').split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1) : undefined;
  return { quick, backends, threads };
}

// The file name test keeps this block out of bundles that include this module (bench/webgpu.ts's, for the GPU machine).
const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1] && /models\.[cm]?[jt]s$/.test(process.argv[1]);
if (isMain) {
  const argv = process.argv.slice(2);
  if (argv[0] === WORKER_FLAG) {
    const backend = argv[1] as BackendChoice;
    const workload = argv[2] as Workload;
    if (!workloads.includes(workload)) throw new Error(`unknown workload ${workload}`);
    const plan = planFor(backend, workload, argv.includes('--quick'));
    if ('skip' in plan) throw new Error(`${backend} ${workload}: ${plan.skip}`);
    const r = await runWorkload(backend, workload, plan, Number(argv[3]));
    process.stdout.write(JSON.stringify(r) + '\n');
  } else {
    const res = (await benchModels(parseModelFlags(argv))) as { results: BackendModels[] };
    process.stderr.write(modelsTable(res) + '\n');
    process.stdout.write(JSON.stringify(res, null, 2) + '\n');
  }
}
