import * as tf from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import type { BackendChoice } from '../backend';
import { variableGradsReleasing } from '../tape/gradients';

/** One worker's answer for one shard: gradients in parameter order, the shard's mean loss and size. */
export type GradResult = { grads: Float32Array[]; loss: number; size: number; computeMs: number };

/**
 * What a task module builds inside each worker (its own tfjs engine): the model, ready to give gradients
 * at given weights on one shard. `size` is the shard's example count (the weight of its mean in the average).
 */
export interface GradTask<Batch> {
  computeGrads(weights: Float32Array[], batch: Batch): Promise<{ grads: Float32Array[]; loss: number; size: number }>;
}

/** A task module exports `createGradTask` (or `exportName`) of this type; `init` is structured-cloned data. */
export type GradTaskFactory<Init, Batch> = (init: Init) => GradTask<Batch> | Promise<GradTask<Batch>>;

export type GradPoolOptions<Init> = {
  /** Number of worker threads (each runs one shard per call). */
  workers: number;
  /** The task module (.ts or .js), e.g. new URL('./myTask.ts', import.meta.url). */
  module: URL;
  init: Init;
  backend?: BackendChoice;
  exportName?: string;
};

type Reply = { id: number; error?: string } & Partial<GradResult>;

/** Starts a worker thread that can import .ts modules: it registers tsx first (workers don't inherit --import). */
function tsWorker(workerData: unknown): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./gradWorker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * Data-parallel gradients over worker threads: the tfjs wasm backend runs on one thread in Node, so each
 * worker is one more core. Each call sends the current weights and one shard per worker and returns the
 * per-shard gradients; `meanGrads` averages them weighted by shard size, which equals the full-batch gradient
 * of a mean loss. The caller keeps the weights and the optimizer (e.g. adamwStep on the averaged gradients).
 * Measured (bench/dataParallel.ts, 61k-param conv net, batch 64, wasm): 2 workers 1.5-1.65x one worker while
 * both cores were free, 0.8-0.9x while other processes kept the machine busy; messaging ~1.5-3 ms/step.
 */
export class GradPool<Batch> {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: GradResult) => void; reject: (e: Error) => void }>();

  private constructor(private readonly workers: Worker[]) {
    for (const w of workers) {
      w.on('message', (r: Reply) => {
        const p = this.pending.get(r.id);
        if (!p) return;
        this.pending.delete(r.id);
        if (r.error !== undefined) p.reject(new Error(`grad worker: ${r.error}`));
        else p.resolve({ grads: r.grads!, loss: r.loss!, size: r.size!, computeMs: r.computeMs! });
      });
      w.on('error', (e) => this.failAll(e));
    }
  }

  /** Starts the workers and waits until each has built its task. */
  static async start<Init, Batch>(opts: GradPoolOptions<Init>): Promise<GradPool<Batch>> {
    if (!(opts.workers >= 1)) throw new Error(`GradPool: workers must be >= 1 (got ${opts.workers})`);
    const data = { module: opts.module.href, init: opts.init, backend: opts.backend ?? 'wasm', exportName: opts.exportName ?? 'createGradTask' };
    const workers = Array.from({ length: opts.workers }, () => tsWorker(data));
    try {
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              w.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(`grad worker: ${m.error}`))));
              w.once('error', reject);
              w.once('exit', (code) => reject(new Error(`grad worker exited with code ${code} while starting`)));
            }),
        ),
      );
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    for (const w of workers) w.removeAllListeners('exit');
    return new GradPool<Batch>(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Gradients of each shard (shard i on worker i; at most `size` shards) at `weights`. */
  async run(weights: Float32Array[], shards: Batch[]): Promise<GradResult[]> {
    if (shards.length > this.workers.length) throw new Error(`GradPool: ${shards.length} shards for ${this.workers.length} workers`);
    return Promise.all(
      shards.map(
        (batch, i) =>
          new Promise<GradResult>((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve, reject });
            // Weights are structured-cloned: every worker needs its own copy.
            this.workers[i]!.postMessage({ id, weights, batch });
          }),
      ),
    );
  }

  /** run(), then the size-weighted mean of the shards' gradients and losses. */
  async meanGrads(weights: Float32Array[], shards: Batch[]): Promise<{ grads: Float32Array[]; loss: number; results: GradResult[] }> {
    const results = await this.run(weights, shards);
    return { ...meanGrads(results), results };
  }

  async close(): Promise<void> {
    this.failAll(new Error('GradPool closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/** Size-weighted mean of per-shard gradients (each a mean over its shard) and losses. */
export function meanGrads(results: GradResult[]): { grads: Float32Array[]; loss: number } {
  const total = results.reduce((a, r) => a + r.size, 0);
  const grads = results[0]!.grads.map((g0) => new Float32Array(g0.length));
  let loss = 0;
  for (const r of results) {
    const w = r.size / total;
    loss += w * r.loss;
    r.grads.forEach((g, p) => {
      const out = grads[p]!;
      for (let j = 0; j < out.length; j++) out[j] += w * g[j]!;
    });
  }
  return { grads, loss };
}

/**
 * For GradTask.computeGrads: sets `vars` to `weights`, returns d loss / d vars (in vars order) as fresh
 * Float32Arrays and the loss value. vars: the model's variables; weights: same order and sizes.
 */
export async function gradsAt(vars: tf.Variable[], weights: Float32Array[], loss: () => tf.Scalar): Promise<{ grads: Float32Array[]; loss: number }> {
  const [value, ...grads] = tf.tidy(() => {
    vars.forEach((v, i) => v.assign(tf.tensor(weights[i]!, v.shape, 'float32')));
    const { value, grads } = variableGradsReleasing(loss, vars);
    return [value, ...vars.map((v) => grads[v.name]!)];
  });
  try {
    const read = await Promise.all([value, ...grads].map((t) => t.data()));
    return { grads: read.slice(1).map((g) => Float32Array.from(g as Float32Array)), loss: read[0]![0]! };
  } finally {
    tf.dispose([value, ...grads]);
  }
}

/**
 * How much faster two threads finish a fixed pure-JS loop (~0.3 s) than one, right now: ~2.0 on two free
 * cores, ~1.0 when other processes hold one. Data-parallel training can do no better, so callers can use it
 * as a cheap probe before choosing the worker count (bench/dataParallel.ts reports both side by side).
 */
export async function measureThreadSpeedup(): Promise<number> {
  const code = `const { parentPort } = require('node:worker_threads');
    parentPort.on('message', (n) => { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i); parentPort.postMessage(s); });`;
  const ws = [new Worker(code, { eval: true }), new Worker(code, { eval: true })];
  const run = (w: Worker, n: number) =>
    new Promise((resolve) => {
      w.once('message', resolve);
      w.postMessage(n);
    });
  const n = 1e8;
  await Promise.all(ws.map((w) => run(w, 1e6)));
  let t0 = performance.now();
  await run(ws[0]!, n);
  const one = performance.now() - t0;
  t0 = performance.now();
  await Promise.all(ws.map((w) => run(w, n / 2)));
  const two = performance.now() - t0;
  await Promise.all(ws.map((w) => w.terminate()));
  return Math.round((one / two) * 100) / 100;
}
