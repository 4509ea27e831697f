import * as tf from '@tensorflow/tfjs';
import type { LoadedTensor } from '../checkpoint';
import { UserError } from '../errors';

/** Tensor-name prefix of EMA weights inside a checkpoint: `ema/<parameter name>`. */
export const EMA_PREFIX = 'ema/';

/**
 * Exponential moving average of model weights (as FQGAN/LlamaGen/DiT's update_ema): after every optimizer step,
 * ema = decay * ema + (1 - decay) * param; it starts as a copy of the parameters. The average is what sampling and
 * export use (see preferEma); training continues on the raw weights. Saved as `ema/<name>` float32 tensors, so a
 * resumed run continues the same average bit for bit.
 */
export class Ema {
  readonly decay: number;
  readonly shadow = new Map<string, tf.Variable>();

  /** params: the trainable parameters to average; decay in [0, 1). */
  constructor(params: Map<string, tf.Variable>, decay: number) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`Ema: decay must be in [0, 1) (got ${decay})`);
    this.decay = decay;
    // The variable keeps its own reference to the copy's data; tidy frees the temporary clone handle.
    for (const [name, v] of params) this.shadow.set(name, tf.tidy(() => tf.variable(v.clone() as tf.Tensor, false)));
  }

  /** One update from the current parameter values (same names as at construction). */
  update(params: Map<string, tf.Variable>): void {
    tf.tidy(() => {
      for (const [name, s] of this.shadow) {
        const p = params.get(name);
        if (!p) throw new Error(`Ema.update: parameter ${name} is missing`);
        s.assign(tf.add(tf.mul(s, this.decay), tf.mul(p, 1 - this.decay)));
      }
    });
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
 * average continues exactly. A resume whose --ema setting contradicts the checkpoint (averages saved but decay 0, or
 * decay > 0 but no averages saved after step 0) fails with one line naming `where`: continuing would change what
 * the run's weights mean.
 */
export function startEma(
  params: Map<string, tf.Variable>,
  decay: number,
  resumed: { step: number; tensors: Map<string, LoadedTensor> } | null,
  where: string,
): Ema | null {
  const saved = resumed !== null && [...resumed.tensors.keys()].some((n) => n.startsWith(EMA_PREFIX));
  if (decay === 0) {
    if (saved) throw new UserError(`--ema: ${where} was trained with an EMA of its weights; resume with --ema <its decay> or start a new run`);
    return null;
  }
  const ema = new Ema(params, decay);
  if (resumed && resumed.step > 0 && !ema.restore(resumed.tensors)) {
    ema.dispose();
    throw new UserError(`--ema ${decay}: ${where} holds no EMA of these weights (trained without --ema); resume without it or start a new run`);
  }
  return ema;
}
