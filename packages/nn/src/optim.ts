import * as tf from '@tensorflow/tfjs';
import { variableGradsReleasing } from '@factorgen/tfjs-ext';

/** Optimizer hyper-parameters (plain data, stored in checkpoints' config). */
export type AdamWConfig = { beta1: number; beta2: number; eps: number; weightDecay: number };
export const defaultAdamW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.0 };

/** Per-parameter moments, keyed by parameter name like the params themselves. */
export type AdamState = { step: number; m: Map<string, tf.Tensor>; v: Map<string, tf.Tensor> };

export function initAdamState(): AdamState {
  return { step: 0, m: new Map(), v: new Map() };
}

/** Linear warmup for `warmup` steps, then cosine decay from `lr` to `lr * minRatio` at `total`. */
export function warmupCosine(step: number, lr: number, warmup: number, total: number, minRatio = 0.1): number {
  if (warmup > 0 && step < warmup) return (lr * (step + 1)) / warmup;
  const t = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return lr * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

/** Global L2 norm of all gradients (a scalar tensor). */
export function globalNorm(grads: tf.NamedTensorMap): tf.Scalar {
  return tf.tidy(() => {
    const sq = Object.values(grads).map((g) => tf.sum(tf.square(g)));
    return tf.sqrt(tf.addN(sq)) as tf.Scalar;
  });
}

/**
 * Scales all gradients so that their global norm is at most `maxNorm` (no-op when maxNorm <= 0), on the device:
 * nothing is read back, so a GPU step never waits on the host for it. Returns new tensors and the pre-clip norm
 * (a scalar tensor; the caller disposes it and the input grads). Clipping as torch.nn.utils.clip_grad_norm_.
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): { grads: tf.NamedTensorMap; norm: tf.Scalar } {
  const norm = globalNorm(grads);
  if (!(maxNorm > 0)) {
    const out: tf.NamedTensorMap = {};
    for (const [k, g] of Object.entries(grads)) out[k] = g.clone();
    return { grads: out, norm };
  }
  const out = tf.tidy(() => {
    // scale = maxNorm / (norm + 1e-6) when norm > maxNorm, else exactly 1
    const scale = tf.where(tf.greater(norm, maxNorm), tf.div(maxNorm, tf.add(norm, 1e-6)), tf.onesLike(norm));
    const r: tf.NamedTensorMap = {};
    for (const [k, g] of Object.entries(grads)) r[k] = tf.mul(g, scale);
    return r;
  });
  return { grads: out, norm };
}

/**
 * One AdamW step (decoupled weight decay, applied to tensors of rank >= 2 only: matrices and conv kernels,
 * not norms, biases or codebooks' scalars). Updates `params` in place and advances `state`.
 */
export function adamwStep(
  params: Map<string, tf.Variable>,
  grads: tf.NamedTensorMap,
  state: AdamState,
  cfg: AdamWConfig,
  lr: number,
): void {
  state.step += 1;
  const t = state.step;
  const bc1 = 1 - Math.pow(cfg.beta1, t);
  const bc2 = 1 - Math.pow(cfg.beta2, t);
  for (const [name, g] of Object.entries(grads)) {
    const p = params.get(name);
    if (!p) throw new Error(`gradient for unknown parameter ${name}`);
    const mPrev = state.m.get(name);
    const vPrev = state.v.get(name);
    const [m, v] = tf.tidy(() => [
      mPrev ? tf.add(tf.mul(mPrev, cfg.beta1), tf.mul(g, 1 - cfg.beta1)) : tf.mul(g, 1 - cfg.beta1),
      vPrev ? tf.add(tf.mul(vPrev, cfg.beta2), tf.mul(tf.square(g), 1 - cfg.beta2)) : tf.mul(tf.square(g), 1 - cfg.beta2),
    ]);
    mPrev?.dispose();
    vPrev?.dispose();
    state.m.set(name, tf.keep(m));
    state.v.set(name, tf.keep(v));
    tf.tidy(() => {
      const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), cfg.eps));
      let next = tf.sub(p, tf.mul(update, lr));
      if (cfg.weightDecay > 0 && p.rank >= 2) next = tf.sub(next, tf.mul(p, lr * cfg.weightDecay));
      p.assign(next);
    });
  }
}

export function disposeAdamState(state: AdamState): void {
  for (const t of state.m.values()) t.dispose();
  for (const t of state.v.values()) t.dispose();
  state.m.clear();
  state.v.clear();
}

/**
 * tf.variableGrads over named parameters, with the gradients keyed by those names (tfjs keys them by its own
 * process-global variable names, which ParamStore does not use). f must return a scalar. Uses variableGradsReleasing
 * (same gradients; activations and their gradients are freed as the backward pass goes, see tape/gradients.ts).
 */
export function variableGradsByName(
  f: () => tf.Scalar,
  vars: Map<string, tf.Variable>,
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const entries = [...vars];
  const { value, grads } = variableGradsReleasing(f, entries.map(([, v]) => v));
  const named: tf.NamedTensorMap = {};
  for (const [name, v] of entries) if (grads[v.name]) named[name] = grads[v.name];
  return { value, grads: named };
}

/** Splits one AdamState's moments by parameter name (`second(name)` true -> second part); both keep `step`. */
export function splitAdamState(state: AdamState, second: (name: string) => boolean): [AdamState, AdamState] {
  const a = initAdamState();
  const b = initAdamState();
  a.step = b.step = state.step;
  for (const [name, m] of state.m) (second(name) ? b : a).m.set(name, m);
  for (const [name, v] of state.v) (second(name) ? b : a).v.set(name, v);
  return [a, b];
}

/** One AdamState holding both states' moments (disjoint names; the first's step), for saving. Shares tensors. */
export function mergeAdamStates(a: AdamState, b: AdamState): AdamState {
  return { step: a.step, m: new Map([...a.m, ...b.m]), v: new Map([...a.v, ...b.v]) };
}

/**
 * One optimization step of the params in `vars`: gradients of the scalar `f` over their trainable ones, clipped to
 * global norm `clip` (0 = off), then AdamW at `lr`. Returns the loss and the pre-clip gradient norm as scalar
 * tensors the caller owns (read them only when they are logged: a read makes a GPU step wait for the host); every
 * other intermediate is disposed (tensors f keeps with tf.keep stay the caller's).
 */
export function optimizerStep(
  f: () => tf.Scalar,
  vars: Map<string, tf.Variable>,
  state: AdamState,
  cfg: AdamWConfig,
  lr: number,
  clip: number,
): { loss: tf.Scalar; gradNorm: tf.Scalar } {
  const trainable = new Map([...vars].filter(([, v]) => v.trainable));
  const { value, grads } = variableGradsByName(f, trainable);
  const clipped = clipByGlobalNorm(grads, clip);
  tf.dispose(grads);
  adamwStep(vars, clipped.grads, state, cfg, lr);
  tf.dispose(clipped.grads);
  return { loss: value, gradNorm: clipped.norm };
}
