import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { defaultAdamW, disposeAdamState, initAdamState, optimizerStep, Rng } from '@factorgen/nn';
import { initBackend, type BackendChoice } from '@factorgen/tfjs-ext/node';
import { readStepMetrics } from '@factorgen/train';
import { createGenerator, generatorLoss, makeGeneratorConfig } from '@factorgen/generator';
import { runWorkload, tsLoader, type Workload, type WorkloadResult } from './models';

/**
 * The GPU check: `npm run bench:webgpu [-- --quick] [--backends webgpu,wasm] [--memory-steps 1000]`. For each backend
 * (default: webgpu, then wasm for comparison in the same run; each in its own process) it prints the backend line
 * (for webgpu: the adapter, software or not, its limits), matmul and conv-training-step GFLOP/s, the models' training
 * throughput and sampling images/s (bench/models.ts workloads), and tf.memory() over `--memory-steps` training steps
 * of a small generator (tensor count and bytes flat; tfjs's peak GPU allocation: WebGPU itself reports no memory use).
 * Tables on stderr, one JSON object on stdout.
 */

const WORKER = '--worker';
const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes('--quick');

type Timing = { shape: string; ms: number; gflops: number };
type MemoryTrace = { steps: number; at10: Mem; end: Mem; peakGpuAllocatedMiB: number | null; flat: boolean; msPerStep: number };
type Mem = { numTensors: number; numBytes: number; numBytesInGPU: number | null };
type WorkerResult = { backend: string; detail: string; probeMs: number | null; kernels: Timing[]; workloads: Partial<Record<Workload, WorkloadResult | { error: string }>>; memory: MemoryTrace | { error: string } };

/** Median wall time of `runs` calls after one warm-up; every output is read back (async) before the clock stops. */
async function time(flops: number, shape: string, runs: number, f: () => tf.Tensor | tf.Tensor[]): Promise<Timing> {
  const once = async () => {
    const out = f();
    const ts = Array.isArray(out) ? out : [out];
    await Promise.all(ts.map((t) => t.data()));
    tf.dispose(ts);
  };
  await once();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await once();
    ms.push(performance.now() - t0);
  }
  const med = [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
  return { shape, ms: round(med), gflops: round(flops / med / 1e6, 3) };
}

async function kernels(runs: number): Promise<Timing[]> {
  const out: Timing[] = [];
  for (const n of quick ? [256] : [256, 512]) {
    const [a, b] = [tf.randomNormal([n, n]), tf.randomNormal([n, n])];
    out.push(await time(2 * n ** 3, `matmul [${n},${n}]@[${n},${n}]`, runs, () => tf.matMul(a, b)));
    tf.dispose([a, b]);
  }
  // Forward + input and filter gradients of a 3x3 conv, counted as 3x the forward flops.
  for (const [B, H, C] of quick ? [[8, 16, 16]] : [[8, 16, 16], [8, 28, 32]]) {
    const x = tf.randomNormal([B!, H!, H!, C!]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, C!, C!], 0, 0.1) as tf.Tensor4D;
    const dy = tf.randomNormal([B!, H!, H!, C!]);
    const step = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'same'), dy)));
    out.push(await time(3 * 2 * B! * H! * H! * C! * 9 * C!, `conv3x3 train step [${B},${H},${H},${C}]->${C}`, runs, () => step([x, w])));
    tf.dispose([x, w, dy]);
  }
  return out;
}

function memInfo(): Mem {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
  return { numTensors: m.numTensors, numBytes: m.numBytes, numBytesInGPU: m.numBytesInGPU ?? null };
}

/** tf.memory() over `steps` generator training steps as the trainer runs them (one NaN/Inf flag read per step). */
async function memoryTrace(steps: number): Promise<MemoryTrace> {
  const cfg = makeGeneratorConfig({
    gridH: 4, gridW: 4, subCodebookSizes: [16, 16], numClasses: 3, width: 32, depth: 2, heads: 2, mlpHidden: 64, headMode: 'ar',
    headLayers: 1, headWidth: 32, headHeads: 2, headMlpHidden: 64, dropout: 0.1, rope: '2d', classDropout: 0.1,
  });
  const gen = createGenerator(cfg, 'bench-memory');
  const opt = initAdamState();
  const rng = new Rng('bench-memory-data');
  const B = 8;
  let at10: Mem | null = null;
  let end: Mem | null = null;
  let peak = 0;
  const t0 = performance.now();
  try {
    for (let s = 0; s < steps; s++) {
      const tokens = tf.tensor3d(Int32Array.from({ length: B * 16 * 2 }, () => rng.int(16)), [B, 16, 2], 'int32');
      const labels = Int32Array.from({ length: B }, () => rng.int(3));
      const { loss, gradNorm } = optimizerStep(() => generatorLoss(gen, tokens, labels, { training: true, rng: new Rng(`m${s}`) }).loss, gen.params.vars, opt, defaultAdamW, 1e-3, 1);
      tokens.dispose();
      const { bad } = await readStepMetrics({ loss, gradNorm }, s % 100 === 99);
      if (bad) throw new Error(`step ${s + 1}: ${bad[0]} is ${bad[1]}`);
      // numBytesAllocatedInGPU: what tfjs-backend-webgpu's buffer pool holds (WebGPU reports no device memory use).
      const m = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
      peak = Math.max(peak, m.numBytesAllocatedInGPU ?? 0);
      if (s === 9) at10 = memInfo();
      if (s === steps - 1) end = memInfo();
    }
  } finally {
    disposeAdamState(opt);
    gen.params.dispose();
  }
  if (!end) throw new Error('no steps run');
  const ref = at10 ?? end;
  return {
    steps,
    at10: ref,
    end,
    peakGpuAllocatedMiB: peak > 0 ? round(peak / 2 ** 20) : null,
    flat: end.numTensors === ref.numTensors && end.numBytes === ref.numBytes && end.numBytesInGPU === ref.numBytesInGPU,
    msPerStep: round((performance.now() - t0) / steps),
  };
}

async function worker(backend: BackendChoice): Promise<void> {
  const info = await initBackend(backend);
  const log = (l: string) => process.stderr.write(`[${info.name}] ${l}\n`);
  log(info.detail);
  const ks = await kernels(quick ? 2 : 3);
  for (const k of ks) log(`${k.shape}: ${k.gflops} GFLOP/s (${k.ms} ms)`);
  const wl: WorkerResult['workloads'] = {};
  for (const w of ['generatorTrain', 'sampleCached', 'tokenizerTrain'] as const) {
    try {
      const r = await runWorkload(backend, w, { warmup: 1, runs: quick ? 1 : 2 });
      wl[w] = r;
      log(`${w}: ${r.itemsPerSecond} ${r.unit}/s (${r.msPerCall.mean} ms/call, tensors ${r.numTensors.afterWarmup}->${r.numTensors.end})`);
    } catch (e) {
      wl[w] = { error: (e as Error).message };
      log(`${w}: failed: ${(e as Error).message}`);
    }
  }
  const steps = Number(flag('--memory-steps') ?? (quick ? 50 : 1000));
  let memory: WorkerResult['memory'];
  try {
    memory = await memoryTrace(steps);
    log(`memory over ${steps} steps: tensors ${memory.at10.numTensors}->${memory.end.numTensors}, bytes ${memory.at10.numBytes}->${memory.end.numBytes}, flat ${memory.flat}, ${memory.msPerStep} ms/step`);
  } catch (e) {
    memory = { error: (e as Error).message };
  }
  const result: WorkerResult = { backend: info.name, detail: info.detail, probeMs: info.probeMs === undefined ? null : round(info.probeMs, 1), kernels: ks, workloads: wl, memory };
  process.stdout.write(JSON.stringify(result) + '\n');
}

function child(backend: string): Promise<WorkerResult | { backend: string; error: string }> {
  const args = [...tsLoader(), fileURLToPath(import.meta.url), WORKER, backend, ...argv];
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      process.stderr.write(d);
    });
    c.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as WorkerResult);
      else resolve({ backend, error: `exit ${code}: ${(err.trim().split('\n').pop() ?? '').slice(0, 400)}` });
    });
  });
}

async function main(): Promise<void> {
  const wi = argv.indexOf(WORKER);
  if (wi >= 0) return worker(argv[wi + 1] as BackendChoice);
  const backends = (flag('--backends') ?? 'webgpu,wasm').split(',');
  const load0 = os.loadavg().map((l) => round(l));
  const results = [];
  for (const b of backends) results.push(await child(b));
  const rows: string[][] = [['', ...results.map((r) => r.backend)]];
  const ok = results.filter((r): r is WorkerResult => !('error' in r));
  const names = ok[0]?.kernels.map((k) => k.shape) ?? [];
  for (const n of names) rows.push([`${n} GFLOP/s`, ...results.map((r) => ('kernels' in r ? String(r.kernels.find((k) => k.shape === n)?.gflops ?? '-') : 'error'))]);
  for (const w of ['tokenizerTrain', 'generatorTrain', 'sampleCached'] as const) {
    rows.push([w, ...results.map((r) => {
      const x = 'workloads' in r ? r.workloads[w] : undefined;
      return x && 'itemsPerSecond' in x ? `${x.itemsPerSecond} ${x.unit}/s` : 'error';
    })]);
  }
  rows.push(['memory flat over steps', ...results.map((r) => ('memory' in r && 'flat' in r.memory ? `${r.memory.flat} (${r.memory.steps})` : 'error'))]);
  rows.push(['peak tfjs GPU allocation MiB', ...results.map((r) => ('memory' in r && 'flat' in r.memory ? String(r.memory.peakGpuAllocatedMiB ?? '-') : '-'))]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  process.stderr.write('\n' + results.map((r) => `${r.backend}: ${'detail' in r ? r.detail : r.error}`).join('\n') + '\n');
  process.stderr.write(rows.map((r) => r.map((v, c) => v.padEnd(widths[c]!)).join('  ')).join('\n') + '\n');
  process.stdout.write(JSON.stringify({ kind: 'webgpu', quick, cpus: os.cpus().length, loadavg: { start: load0, end: os.loadavg().map((l) => round(l)) }, results }) + '\n');
}

await main();
