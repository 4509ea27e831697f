import * as tf from '@tensorflow/tfjs';
import type { LoadedTensor } from './tensorData';
import { UserError } from '@factorgen/tfjs-ext';

/** Tensor-name prefix of EMA weights inside a checkpoint: `ema/<parameter name>`. */
export const EMA_PREFIX = 'ema/';

/**
 * How a run's EMA behaves beyond its decay, recorded in its checkpoint's train settings. Runs written before these
 * fields had neither (see emaOptionsOf), and keep that on resume.
 * - warmup: the decay of update n (0-based: the update after optimizer step n+1) is min(decay, (1 + n) / (10 + n))
 *   (the warm-up of TensorFlow's ExponentialMovingAverage num_updates, also timm's ModelEmaV3). Without it a short
 *   run's average still holds the random initialization: 0.999^2000 = 13.5 % of it after 2000 steps.
 * - followRestarts: codebook rows that a dead-code restart overwrites are overwritten in the average too, so the
 *   exported codebook holds the restarted codes rather than a blend of the dead code and its replacement.
 */
export type EmaOptions = { warmup: boolean; followRestarts: boolean };

/** What new runs get. */
export const EMA_OPTIONS_NEW: EmaOptions = { warmup: true, followRestarts: true };

/**
 * The EMA options a run uses: a new run's `requested` (EMA_OPTIONS_NEW when left out); a resumed run's as its
 * checkpoint's train settings record them (`extra.train.emaWarmup` / `emaFollowRestarts`), absent = false: runs made
 * before these options keep the plain average they were trained with.
 */
export function emaOptionsOf(resumedExtra: unknown | null, requested: Partial<EmaOptions> = {}): EmaOptions {
  if (resumedExtra === null) {
    return { warmup: requested.warmup ?? EMA_OPTIONS_NEW.warmup, followRestarts: requested.followRestarts ?? EMA_OPTIONS_NEW.followRestarts };
  }
  const t = (resumedExtra as { train?: { emaWarmup?: unknown; emaFollowRestarts?: unknown } } | undefined)?.train;
  return { warmup: t?.emaWarmup === true, followRestarts: t?.emaFollowRestarts === true };
}

/** The decay of update n (0-based) with warm-up: min(decay, (1 + n) / (10 + n)); without warm-up, decay. */
export function emaDecayAt(decay: number, n: number, warmup: boolean): number {
  return warmup ? Math.min(decay, (1 + n) / (10 + n)) : decay;
}

/**
 * Exponential moving average of model weights (as FQGAN/LlamaGen/DiT's update_ema): after every optimizer step,
 * ema = d_n * ema + (1 - d_n) * param, with d_n = emaDecayAt(decay, n, warmup); it starts as a copy of the
 * parameters. The average is what sampling and export use (see preferEma); training continues on the raw weights.
 * Saved as `ema/<name>` float32 tensors; n is the optimizer step, so a resumed run continues the same average bit
 * for bit.
 */
export class Ema {
  readonly decay: number;
  readonly warmup: boolean;
  readonly shadow = new Map<string, tf.Variable>();

  /** params: the trainable parameters to average; decay in [0, 1); warmup: see EmaOptions (default off). */
  constructor(params: Map<string, tf.Variable>, decay: number, warmup = false) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`Ema: decay must be in [0, 1) (got ${decay})`);
    this.decay = decay;
    this.warmup = warmup;
    // The variable keeps its own reference to the copy's data; tidy frees the temporary clone handle.
    for (const [name, v] of params) this.shadow.set(name, tf.tidy(() => tf.variable(v.clone() as tf.Tensor, false)));
  }

  /**
   * One update from the current parameter values (same names as at construction); n: 0-based index of this update
   * (the optimizer step just taken, minus one), which only the warm-up reads.
   */
  update(params: Map<string, tf.Variable>, n = 0): void {
    const d = emaDecayAt(this.decay, n, this.warmup);
    tf.tidy(() => {
      for (const [name, s] of this.shadow) {
        const p = params.get(name);
        if (!p) throw new Error(`Ema.update: parameter ${name} is missing`);
        s.assign(tf.add(tf.mul(s, d), tf.mul(p, 1 - d)));
      }
    });
  }

  /**
   * Sets rows `rows` of the average of the 2-D parameter `name` ([V, d]) to that parameter's current rows: used after
   * a dead-code restart overwrote them. Other rows are unchanged (bit for bit). Throws for an unknown or non-2-D name.
   */
  copyRows(params: Map<string, tf.Variable>, name: string, rows: number[]): void {
    const s = this.shadow.get(name);
    const p = params.get(name);
    if (!s || !p || s.rank !== 2) throw new Error(`Ema.copyRows: ${name} is not an averaged 2-D parameter`);
    if (rows.length === 0) return;
    const V = s.shape[0];
    const mask = new Uint8Array(V);
    for (const r of rows) if (r >= 0 && r < V) mask[r] = 1;
    tf.tidy(() => s.assign(tf.where(tf.tensor2d(mask, [V, 1], 'bool'), p, s)));
  }

  /** The averages as checkpoint tensors named `ema/<name>` (the caller saves them; they stay owned by this object). */
  tensors(): Map<string, tf.Tensor> {
    return new Map([...this.shadow].map(([n, v]) => [`${EMA_PREFIX}${n}`, v as tf.Tensor]));
  }

  /** Restores the averages from loaded checkpoint tensors; returns false when any `ema/<name>` is missing or mis-shaped. */
  restore(tensors: Map<string, LoadedTensor>): boolean {
    for (const [name, s] of this.shadow) {
      const t = tensors.get(`${EMA_PREFIX}${name}`);
      if (!t || t.dtype !== 'float32' || t.shape.join(',') !== s.shape.join(',')) return false;
    }
    for (const [name, s] of this.shadow) {
      const t = tensors.get(`${EMA_PREFIX}${name}`)!;
      tf.tidy(() => s.assign(tf.tensor(t.data, t.shape, 'float32')));
    }
    return true;
  }

  dispose(): void {
    for (const v of this.shadow.values()) v.dispose();
    this.shadow.clear();
  }
}

/**
 * The model weights to use from a checkpoint's tensors: every parameter that has an `ema/<name>` average takes the
 * average's values, and the `ema/` entries themselves are dropped. Without EMA tensors the map is returned as is.
 */
export function preferEma<T>(tensors: Map<string, T>): Map<string, T> {
  if (![...tensors.keys()].some((n) => n.startsWith(EMA_PREFIX))) return tensors;
  const out = new Map<string, T>();
  for (const [name, t] of tensors) {
    if (name.startsWith(EMA_PREFIX)) continue;
    out.set(name, tensors.get(`${EMA_PREFIX}${name}`) ?? t);
  }
  return out;
}

/** The tensors of a checkpoint without its `ema/` averages (what assignParams gets on resume). */
export function withoutEma<T>(tensors: Map<string, T>): Map<string, T> {
  return new Map([...tensors].filter(([name]) => !name.startsWith(EMA_PREFIX)));
}

/**
 * The EMA for a training run: none when decay is 0; on resume, restored from the checkpoint's `ema/` tensors so the
 * average continues exactly; `warmup` as emaOptionsOf says for the run. A resume whose --ema setting contradicts the checkpoint (averages saved but decay 0, or
 * decay > 0 but no averages saved after step 0) fails with one line naming `where`: continuing would change what
 * the run's weights mean.
 */
export function startEma(
  params: Map<string, tf.Variable>,
  decay: number,
  resumed: { step: number; tensors: Map<string, LoadedTensor> } | null,
  where: string,
  warmup = false,
): Ema | null {
  const saved = resumed !== null && [...resumed.tensors.keys()].some((n) => n.startsWith(EMA_PREFIX));
  if (decay === 0) {
    if (saved) throw new UserError(`${where} was trained with an EMA of its weights; resume with \`ema\` <its decay> or start a new run`, { field: 'ema' });
    return null;
  }
  const ema = new Ema(params, decay, warmup);
  if (resumed && resumed.step > 0 && !ema.restore(resumed.tensors)) {
    ema.dispose();
    throw new UserError(`${where} holds no EMA of these weights (trained without \`ema\`); resume without it or start a new run`, { field: 'ema', value: decay });
  }
  return ema;
}
