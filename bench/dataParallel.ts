import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { initBackend, type BackendChoice } from '../packages/shared/src/backend';
import { GradPool, meanGrads, measureThreadSpeedup, type GradResult } from '../packages/shared/src/parallel/gradPool';
import { Rng } from '../packages/shared/src/rng';
import { forwardFlopsPerImage, initParams, paramShapes } from './dataParallelModel';
import { createGradTask, type Shard } from './dataParallelWorker';

/** Splits a batch into k equal shards. x: [B,28,28,1] flat, labels: [B]. */
function split(x: Float32Array, labels: Int32Array, k: number): Shard[] {
  const per = labels.length / k;
  const img = 28 * 28;
  return Array.from({ length: k }, (_, i) => ({
    x: x.slice(i * per * img, (i + 1) * per * img),
    batch: per,
    labels: labels.slice(i * per, (i + 1) * per),
  }));
}

export type ParallelRun = {
  mode: string;
  workers: number;
  globalBatch: number;
  steps: number;
  /** Median over the timed steps. */
  msPerStep: number;
  bestMsPerStep: number;
  stepsPerSec: number;
  imagesPerSec: number;
  bestImagesPerSec: number;
  /** Mean over steps of the slowest worker's own compute time. */
  computeMsPerStep: number;
  /** Step time not spent computing in the slowest worker: messaging, cloning, averaging, update. */
  overheadMsPerStep: number;
  /** Process CPU time (all threads) per step. */
  cpuMsPerStep: number;
  firstLoss: number;
  lastLoss: number;
};

/**
 * Data-parallel training throughput: the same conv net and global batch trained with gradients from the main
 * thread, from 1 worker, and from 2 workers (half the batch each), through GradPool; the main thread averages
 * the gradients, applies SGD and sends the new weights with the next step's shards.
 */
export async function benchDataParallel(opts: { backend?: BackendChoice; globalBatch?: number; steps?: number; warmup?: number; threads?: number; only?: 'threads' | 'pool' } = {}): Promise<object> {
  // The main thread runs wasm on `threads` threads (the threaded build for >= 2): --threads against the pool, in one run.
  const threads = opts.threads ?? 1;
  const backend = opts.backend ?? 'wasm';
  const globalBatch = opts.globalBatch ?? 64;
  const steps = opts.steps ?? 10;
  const warmup = opts.warmup ?? 2;
  const rng = new Rng('data-parallel-bench');
  const batches = Array.from({ length: 4 }, () => {
    // Noise plus stripes whose period depends on the label: survives global pooling, so the net can learn it.
    const labels = Int32Array.from({ length: globalBatch }, () => rng.int(10));
    const x = new Float32Array(globalBatch * 28 * 28);
    for (let i = 0; i < x.length; i++) {
      const row = Math.floor(i / 28) % 28;
      const label = labels[Math.floor(i / (28 * 28))]!;
      x[i] = rng.normal() * 0.3 + Math.sin((row * (label + 1) * Math.PI) / 14);
    }
    return { x, labels };
  });

  const info = await initBackend(backend, { threads });
  const inline = createGradTask();
  const inlineGrads = async (weights: Float32Array[], shard: Shard): Promise<GradResult> => {
    const t0 = performance.now();
    return { ...(await inline.computeGrads(weights, shard)), computeMs: performance.now() - t0 };
  };
  const startPool = (workers: number) => GradPool.start<undefined, Shard>({ workers, module: new URL('./dataParallelWorker.ts', import.meta.url), init: undefined, backend });

  // Modes run interleaved step by step, so that load from other processes on a shared machine hits them alike.
  type Mode = { name: string; workers: number; pool: GradPool<Shard> | null; weights: Float32Array[]; ms: number[]; compute: number[]; cpu: number[]; losses: number[] };
  const modes: Mode[] = [];
  const counts = opts.only === 'threads' ? [0] : opts.only === 'pool' ? [2] : [0, 1, 2];
  for (const k of counts) {
    modes.push({
      name: k === 0 ? `main thread, ${threads} wasm thread${threads > 1 ? 's' : ''}` : `${k} worker${k > 1 ? 's' : ''}`,
      workers: k,
      pool: k === 0 ? null : await startPool(k),
      weights: initParams('data-parallel-init'),
      ms: [],
      compute: [],
      cpu: [],
      losses: [],
    });
  }
  const lr = 0.5;
  for (let step = 0; step < warmup + steps; step++) {
    const { x, labels } = batches[step % batches.length]!;
    for (const m of modes) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const shards = split(x, labels, Math.max(m.workers, 1));
      const replies = m.pool ? await m.pool.run(m.weights, shards) : [await inlineGrads(m.weights, shards[0]!)];
      const { grads, loss } = meanGrads(replies);
      m.weights.forEach((w, p) => {
        const g = grads[p]!;
        for (let j = 0; j < w.length; j++) w[j] -= lr * g[j]!;
      });
      const dt = performance.now() - t0;
      const c = process.cpuUsage(c0);
      m.losses.push(loss);
      if (step >= warmup) {
        m.ms.push(dt);
        m.compute.push(Math.max(...replies.map((r) => r.computeMs)));
        m.cpu.push((c.user + c.system) / 1000);
      }
    }
  }
  await Promise.all(modes.map((m) => m.pool?.close()));
  const r2 = (v: number) => Math.round(v * 100) / 100;
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const runs: ParallelRun[] = modes.map((m) => {
    const ms = median(m.ms);
    return {
      mode: m.name,
      workers: m.workers,
      globalBatch,
      steps,
      msPerStep: r2(ms),
      bestMsPerStep: r2(Math.min(...m.ms)),
      stepsPerSec: r2(1000 / ms),
      imagesPerSec: r2((1000 / ms) * globalBatch),
      bestImagesPerSec: r2((1000 / Math.min(...m.ms)) * globalBatch),
      computeMsPerStep: r2(median(m.compute)),
      overheadMsPerStep: r2(median(m.ms.map((t, i) => t - m.compute[i]!))),
      cpuMsPerStep: r2(median(m.cpu)),
      firstLoss: Math.round(m.losses[0]! * 1000) / 1000,
      lastLoss: Math.round(m.losses[m.losses.length - 1]! * 1000) / 1000,
    };
  });

  // The averaged 2-shard gradient must equal the full-batch one (the loss is a mean): a check that the
  // harness computes the same thing in every mode.
  const threadSpeedupBefore = await measureThreadSpeedup();
  const gradientCheckMaxAbsDiff = opts.only ? null : await (async () => {
    const pool = await startPool(2);
    const weights = initParams('data-parallel-init');
    const { x, labels } = batches[0]!;
    const full = (await inlineGrads(weights, split(x, labels, 1)[0]!)).grads;
    const avg = (await pool.meanGrads(weights, split(x, labels, 2))).grads;
    await pool.close();
    let worst = 0;
    full.forEach((g, p) => g.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - avg[p]![j]!)))));
    return worst;
  })();

  const threadSpeedupAfter = await measureThreadSpeedup();
  const oneWorker = runs[1] ?? runs[0]!;
  const twoWorkers = runs[2] ?? runs[0]!;
  return {
    kind: 'dataParallel',
    backend: info.name,
    detail: info.detail,
    cpus: os.cpus().length,
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
    model: '4x conv3x3 (1-16 s1, 16-32 s2, 32-64 s2, 64-64 s1) + linear, input [B,28,28,1]',
    params: paramShapes.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0),
    trainGflopPerStep: Math.round(((3 * forwardFlopsPerImage * globalBatch) / 1e9) * 1000) / 1000,
    gradientCheckMaxAbsDiff,
    runs,
    speedup2vs1: r2(twoWorkers.imagesPerSec / oneWorker.imagesPerSec),
    bestSpeedup2vs1: r2(twoWorkers.bestImagesPerSec / oneWorker.bestImagesPerSec),
    threadSpeedupBefore,
    threadSpeedupAfter,
  };
}

// npx tsx bench/dataParallel.ts [backend] [batch] [steps] [main-thread wasm threads] [threads|pool: that mode alone]
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const result = await benchDataParallel({
    backend: (args[0] as BackendChoice | undefined) ?? 'wasm',
    globalBatch: args[1] ? Number(args[1]) : undefined,
    steps: args[2] ? Number(args[2]) : undefined,
    threads: args[3] ? Number(args[3]) : undefined,
    only: (args[4] as 'threads' | 'pool' | undefined) || undefined,
  });
  console.log(JSON.stringify(result, null, 2));
}
