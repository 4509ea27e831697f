import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import { initBackend, type BackendChoice } from '@factorgen/tfjs-ext/node';

/**
 * One timed workload: its shape, median wall time per run and the resulting rate, plus the process CPU time
 * per run and the rate per CPU-second: on a shared, loaded machine the wall-clock rate drops while the
 * CPU-time rate stays close to what an idle core gives (the backends here are single-threaded).
 */
export type Timing = { shape: string; ms: number; gflops: number; cpuMs: number; gflopsPerCpuSecond: number; runs: number };

/** Per-backend results; `error` says why a backend was skipped. */
export type BackendBench = {
  backend: string;
  detail?: string;
  error?: string;
  matmul?: Timing;
  matmulTransposed?: Timing;
  convTrainStep?: Timing;
  convTrainStepStride2?: Timing;
};

/**
 * Median of `runs` timed calls after one warm-up; each call's result is read back (data()) so the
 * time includes the whole computation, then disposed.
 */
async function time(flops: number, shape: string, runs: number, f: () => tf.Tensor | tf.Tensor[]): Promise<Timing> {
  const sync = async (r: tf.Tensor | tf.Tensor[]) => {
    for (const t of Array.isArray(r) ? r : [r]) {
      await t.data();
      t.dispose();
    }
  };
  await sync(f());
  const ms: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await sync(f());
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const round = (v: number) => Math.round(v * 100) / 100;
  const wall = median(ms);
  const cpuMs = median(cpu);
  return { shape, ms: round(wall), gflops: round(flops / wall / 1e6), cpuMs: round(cpuMs), gflopsPerCpuSecond: round(flops / cpuMs / 1e6), runs };
}

/** a @ b for [n,n] matrices; 2n^3 flops. With `transposed`, a^T @ b^T: what matMul's gradient runs. */
async function benchMatmul(n: number, runs: number, transposed: boolean): Promise<Timing> {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const t = await time(2 * n ** 3, `${transposed ? 'a^T@b^T ' : ''}[${n},${n}]@[${n},${n}]`, runs, () => tf.matMul(a, b, transposed, transposed));
  a.dispose();
  b.dispose();
  return t;
}

/**
 * Forward + backward (input and filter gradients) of one 3x3 conv, x: [B,H,W,Ci] -> [B,H/s,W/s,Co].
 * Counted as 3x the forward flops (2*B*OH*OW*Co*9*Ci each for forward, dx and dW).
 */
async function benchConvStep(xShape: [number, number, number, number], co: number, stride: 1 | 2, runs: number): Promise<Timing> {
  const [b, h, w, ci] = xShape;
  const x = tf.randomNormal(xShape) as tf.Tensor4D;
  const filter = tf.randomNormal([3, 3, ci, co], 0, 0.1) as tf.Tensor4D;
  const oh = Math.ceil(h / stride);
  const ow = Math.ceil(w / stride);
  const dy = tf.randomNormal([b, oh, ow, co]);
  const step = tf.grads((xx: tf.Tensor, ff: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, stride, 'same'), dy)));
  const flops = 3 * 2 * b * oh * ow * co * 9 * ci;
  const t = await time(flops, `[${xShape}] 3x3 s${stride} -> ${co}`, runs, () => step([x, filter]));
  tf.dispose([x, filter, dy]);
  return t;
}

/**
 * Kernel throughput per available backend (tfjs-node 'tensorflow' when it loads, wasm, cpu).
 * cpu gets smaller problems and fewer runs: it runs at well under 1 GFLOP/s. `backends`: which to try, in order.
 */
export async function benchKernels(backends: BackendChoice[] = ['tensorflow', 'wasm', 'cpu']): Promise<object> {
  const results: BackendBench[] = [];
  for (const choice of backends) {
    try {
      const info = await initBackend(choice);
      const slow = info.name === 'cpu';
      const runs = slow ? 2 : 5;
      results.push({
        backend: info.name,
        detail: info.detail,
        matmul: await benchMatmul(slow ? 256 : 512, runs, false),
        matmulTransposed: await benchMatmul(slow ? 256 : 512, runs, true),
        convTrainStep: await benchConvStep(slow ? [4, 28, 28, 32] : [32, 28, 28, 32], 32, 1, runs),
        convTrainStepStride2: await benchConvStep(slow ? [4, 28, 28, 32] : [32, 28, 28, 32], 64, 2, runs),
      });
    } catch (err) {
      results.push({ backend: choice, error: (err as Error).message });
    }
  }
  return { kind: 'kernels', cpus: os.cpus().length, loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100), results };
}
