import * as tf from '@tensorflow/tfjs';
import { fileURLToPath } from 'node:url';
import { defaultAdamW, disposeAdamState, initAdamState, optimizerStep, type AdamState, Rng } from '@factorgen/nn';
import { initBackend, type BackendChoice } from '@factorgen/tfjs-ext/node';
import { createDiscriminator, discriminatorForward, dLossHinge, gLossHinge, tokenizerForward, type Tokenizer, type LoadedTeacher } from '@factorgen/tokenizer';
import { loadFrozenTeacher, loadTokenizer } from '@factorgen/pipelines';
import { ParamStore } from '@factorgen/nn';
import { generatorLoss, seqLen, type Generator } from '@factorgen/generator';
import { loadGenerator } from '@factorgen/pipelines';

/**
 * FLOPs and per-kernel time of one training step of a model restored from a training run's checkpoint (so the
 * architecture is exactly the one the CLI trained), on synthetic inputs of the run's shape.
 *
 * FLOPs are counted from the shapes of the matmul and convolution kernels tfjs runs (2 x multiply-adds; elementwise
 * ops, norms and softmax are not counted):
 * - `forward`: one forward pass (training mode, tape off).
 * - `model` = 3 x forward: the usual training-step count (backward = 2 x forward: input and weight gradients,
 *   Kaplan et al. 2020, "Scaling Laws for Neural Language Models", sec. 2.1). GFLOP/s figures use this one, so work
 *   the implementation adds (gradient checkpointing's recomputation: by default each block minus its projections,
 *   the whole block with recompute 'all') does not count as achieved.
 * - `executed`: what the step's kernels actually ran (recompute included).
 *
 * Run: `npx tsx bench/stepProfile.ts --run DIR [--teacher DIR] [--batch N] [--backend wasm] [--steps 1] [--top 25] [--shapes] [--flops-only]`.
 * A tokenizer step is the trainer's: with --teacher, the perceptual and alignment terms; with an adversarial config,
 * the generator's hinge term and the discriminator's step.
 * Prints one JSON line on stdout; with --top, a per-kernel table on stderr.
 */

/** Multiply-adds x 2 of one kernel call, from its input and output shapes; 0 for kernels that are not matmuls or convs. */
export function kernelFlops(name: string, inputShapes: (number[] | null)[], outputShapes: number[][]): number {
  const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const out = outputShapes[0];
  if (!out) return 0;
  switch (name) {
    case 'BatchMatMul':
    case '_FusedMatMul': {
      // out [...batch, M, N]; a holds M x K per batch element (transposed or not): K = |a's last two dims| / M.
      const a = inputShapes[0];
      if (!a) return 0;
      const M = out[out.length - 2]!;
      const K = prod(a.slice(-2)) / M;
      return 2 * prod(out) * K;
    }
    case 'Conv2D':
    case 'FusedConv2D': {
      const f = inputShapes[1]; // [kh, kw, cin, cout]
      if (!f) return 0;
      return 2 * prod(out) * f[0]! * f[1]! * f[2]!;
    }
    case 'Conv2DBackpropInput': {
      // dy [B, Ho, Wo, cout], filter [kh, kw, cin, cout] -> dx: the same multiply-adds as the forward conv.
      const dy = inputShapes[0];
      const f = inputShapes[1];
      if (!dy || !f) return 0;
      return 2 * prod(dy) * f[0]! * f[1]! * f[2]!;
    }
    case 'Conv2DBackpropFilter': {
      const dy = inputShapes[1];
      if (!dy) return 0;
      return 2 * prod(dy) * out[0]! * out[1]! * out[2]!;
    }
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2D': {
      const f = inputShapes[1];
      if (!f) return 0;
      return 2 * prod(out) * f[0]! * f[1]!;
    }
    default:
      return 0;
  }
}

type Loaded = { kind: 'tokenizer'; tok: Tokenizer } | { kind: 'generator'; gen: Generator };

async function loadRun(dir: string): Promise<Loaded> {
  try {
    return { kind: 'tokenizer', tok: (await loadTokenizer(dir)).tok };
  } catch {
    return { kind: 'generator', gen: (await loadGenerator(dir)).gen };
  }
}

/** One training step (forward, gradients, clip 1, AdamW) as the trainers run it; returns a function of the step index. */
function makeStep(m: Loaded, batch: number, teacher?: LoadedTeacher): { forward: () => tf.Scalar; step: (i: number) => Promise<void>; dispose: () => void; items: number; params: number } {
  const opt: AdamState = initAdamState();
  if (m.kind === 'tokenizer') {
    const { cfg, params } = m.tok;
    const rng = new Rng('bench/profile');
    const x = tf.tensor4d(Float32Array.from({ length: batch * cfg.imageSize * cfg.imageSize * cfg.channels }, () => rng.next() * 2 - 1), [batch, cfg.imageSize, cfg.imageSize, cfg.channels]);
    // As the trainer's step: the teacher's perceptual and alignment terms, the generator's hinge term and the
    // discriminator's own step (on this batch's reconstructions) when the config has them.
    const adv = cfg.adversarial && cfg.adversarial.weight > 0 ? cfg.adversarial : null;
    const disc = new ParamStore(new Rng('bench/profile/discriminator'));
    if (adv) createDiscriminator(disc, adv, cfg.channels);
    const discOpt: AdamState = initAdamState();
    let recon: tf.Tensor4D | null = null;
    const forward = () => {
      const out = tokenizerForward(m.tok, x, { training: true, teacher, teachers: teacher ? [teacher] : [] });
      if (!adv) return out.total;
      tf.dispose(recon ?? []); // a forward-only call (the FLOP count) leaves its own
      recon = tf.keep(out.recon);
      return tf.add(out.total, tf.mul(gLossHinge(discriminatorForward(disc, adv, out.recon)), adv.weight)) as tf.Scalar;
    };
    return {
      forward,
      items: batch,
      params: params.count(),
      step: async () => {
        const r = optimizerStep(() => forward(), params.vars, opt, defaultAdamW, 1e-3, 1);
        const toFree: tf.Tensor[] = [r.loss, r.gradNorm];
        if (adv && recon) {
          const fake: tf.Tensor4D = recon;
          const d = optimizerStep(() => dLossHinge(discriminatorForward(disc, adv, x), discriminatorForward(disc, adv, fake)), disc.vars, discOpt, defaultAdamW, 1e-3, 1);
          toFree.push(d.loss, d.gradNorm, fake);
          recon = null;
        }
        await r.loss.data();
        tf.dispose(toFree);
      },
      dispose: () => {
        x.dispose();
        tf.dispose(recon ?? []);
        disposeAdamState(opt);
        disposeAdamState(discOpt);
        params.dispose();
        disc.dispose();
        teacher?.dispose();
      },
    };
  }
  const { cfg, params } = m.gen;
  const T = seqLen(cfg);
  const K = cfg.subCodebookSizes.length;
  const rng = new Rng('bench/profile');
  const tokens = tf.tensor3d(Int32Array.from({ length: batch * T * K }, (_, i) => rng.int(cfg.subCodebookSizes[i % K]!)), [batch, T, K], 'int32');
  const labels = Int32Array.from({ length: batch }, () => rng.int(cfg.numClasses));
  let s = 0;
  const forward = () => generatorLoss(m.gen, tokens, labels, { training: true, rng: new Rng(`bench/profile${s}`) }).loss;
  return {
    forward,
    items: batch * T,
    params: params.count(),
    step: async (i) => {
      s = i;
      const r = optimizerStep(() => forward(), params.vars, opt, defaultAdamW, 1e-3, 1);
      await r.loss.data();
      tf.dispose([r.loss, r.gradNorm]);
    },
    dispose: () => {
      tokens.dispose();
      disposeAdamState(opt);
      params.dispose();
    },
  };
}

export type StepProfile = {
  kind: 'tokenizer' | 'generator';
  backend: string;
  batch: number;
  params: number;
  /** GFLOP per step: forward, model (3 x forward), executed (what the kernels ran; 0 with --flops-only, which runs no step). */
  gflop: { forward: number; model: number; executed: number };
  /** Per kernel name: calls, ms and GFLOP in the profiled step (absent with --flops-only). */
  kernels?: { name: string; calls: number; ms: number; gflop: number }[];
  /** The same per kernel name and input/output shapes (with --shapes). */
  shapes?: { name: string; calls: number; ms: number; gflop: number }[];
  /** Sum of kernel times and the step's wall time (ms); the difference is time outside kernels. */
  kernelMs?: number;
  stepMs?: number;
  /** CPU time of the process per step (ms; user + system): on a loaded machine the figure to compare, wall time is not. */
  stepCpuMs?: number;
};

async function profileKernels(f: () => Promise<unknown> | unknown): Promise<tf.ProfileInfo> {
  // The profiler otherwise reads every output back to check for NaN (slow and not what a step does).
  const prev = tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS');
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  try {
    return await tf.profile(f as () => tf.TensorContainer);
  } finally {
    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', prev);
  }
}

export async function profileStep(dir: string, opts: { batch: number; backend: BackendChoice; steps: number; flopsOnly: boolean; shapes?: boolean; teacher?: string }): Promise<StepProfile> {
  const info = await initBackend(opts.backend);
  const m = await loadRun(dir);
  const w = makeStep(m, opts.batch, opts.teacher ? await loadFrozenTeacher(opts.teacher) : undefined);
  const flopsOf = (p: tf.ProfileInfo) => p.kernels.reduce((a, k) => a + kernelFlops(k.name, k.inputShapes, k.outputShapes), 0);
  const fwd = await profileKernels(() => {
    tf.tidy(() => {
      w.forward();
    });
  });
  const forward = flopsOf(fwd);
  const res: StepProfile = { kind: m.kind, backend: info.name, batch: opts.batch, params: w.params, gflop: { forward: forward / 1e9, model: (3 * forward) / 1e9, executed: 0 } };
  if (opts.flopsOnly) {
    w.dispose();
    return res;
  }
  await w.step(0); // warm-up: optimizer state, kernel setup
  let stepMs = 0;
  let stepCpuMs = 0;
  const byName = new Map<string, { name: string; calls: number; ms: number; gflop: number }>();
  const byShape = new Map<string, { name: string; calls: number; ms: number; gflop: number }>();
  let executed = 0;
  for (let i = 1; i <= opts.steps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const p = await profileKernels(() => w.step(i));
    const c = process.cpuUsage(c0);
    stepMs += performance.now() - t0;
    stepCpuMs += (c.user + c.system) / 1000;
    executed = flopsOf(p);
    for (const k of p.kernels) {
      const e = byName.get(k.name) ?? { name: k.name, calls: 0, ms: 0, gflop: 0 };
      e.calls += 1;
      e.ms += k.kernelTimeMs as number;
      e.gflop += kernelFlops(k.name, k.inputShapes, k.outputShapes) / 1e9;
      byName.set(k.name, e);
      if (opts.shapes) {
        const key = `${k.name} ${JSON.stringify(k.inputShapes)}->${JSON.stringify(k.outputShapes)}`;
        const e2 = byShape.get(key) ?? { name: key, calls: 0, ms: 0, gflop: 0 };
        e2.calls += 1;
        e2.ms += k.kernelTimeMs as number;
        e2.gflop += kernelFlops(k.name, k.inputShapes, k.outputShapes) / 1e9;
        byShape.set(key, e2);
      }
    }
  }
  res.gflop.executed = executed / 1e9;
  {
    const n = opts.steps;
    res.kernels = [...byName.values()].map((e) => ({ name: e.name, calls: e.calls / n, ms: e.ms / n, gflop: e.gflop / n })).sort((a, b) => b.ms - a.ms);
    if (opts.shapes) res.shapes = [...byShape.values()].map((e) => ({ name: e.name, calls: e.calls / n, ms: e.ms / n, gflop: e.gflop / n })).sort((a, b) => b.ms - a.ms);
    // customGrad scopes ('unnamed scope') time the kernels nested in them again: left out of the sum.
    res.kernelMs = res.kernels.filter((k) => k.name !== 'unnamed scope').reduce((a, k) => a + k.ms, 0);
    res.stepMs = stepMs / n;
    res.stepCpuMs = stepCpuMs / n;
  }
  w.dispose();
  return res;
}

// The file name test keeps this block out of bundles that include this module (as bench/models.ts does).
const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1] && /stepProfile\.[cm]?[jt]s$/.test(process.argv[1]);
if (isMain) {
  const argv = process.argv.slice(2);
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const dir = arg('--run');
  if (!dir) throw new Error('--run DIR: a tokenizer or generator training run');
  const r = await profileStep(dir, {
    batch: Number(arg('--batch') ?? 64),
    backend: (arg('--backend') ?? 'wasm') as BackendChoice,
    steps: Number(arg('--steps') ?? 1),
    flopsOnly: argv.includes('--flops-only'),
    shapes: argv.includes('--shapes'),
    teacher: arg('--teacher'),
  });
  const top = Number(arg('--top') ?? 0);
  if (top > 0 && r.kernels) {
    const f = (v: number, d = 1) => v.toFixed(d);
    process.stderr.write(`step ${f(r.stepMs!)} ms (CPU ${f(r.stepCpuMs!)} ms), kernels ${f(r.kernelMs!)} ms; GFLOP forward ${f(r.gflop.forward, 2)} model ${f(r.gflop.model, 2)} executed ${f(r.gflop.executed, 2)}\n`);
    for (const k of [...r.kernels.slice(0, top), ...(r.shapes ?? []).slice(0, top)]) {
      process.stderr.write(`${k.name.padEnd(28).slice(0, 110)} ${f(k.calls, 0).padStart(6)} calls ${f(k.ms).padStart(9)} ms ${f((100 * k.ms) / r.kernelMs!).padStart(5)} %${k.gflop > 0 ? `  ${f(k.gflop / (k.ms / 1000), 2)} GFLOP/s` : ''}\n`);
    }
  }
  process.stdout.write(JSON.stringify(r) + '\n');
}
