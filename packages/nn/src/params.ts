import * as tf from '@tensorflow/tfjs';
import { Rng } from './rng';
import { UserError } from '@factorgen/tfjs-ext';
import { describeMismatch } from './tensorData';

/** How a parameter starts: drawn from the project's seeded Rng so every backend starts from the same numbers. */
export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; limit: number };

/** He-style uniform init for a weight whose fan-in is `fanIn` (matches PyTorch's default for Linear/Conv). */
export function fanInUniform(fanIn: number): Init {
  return { kind: 'uniform', limit: 1 / Math.sqrt(fanIn) };
}

function fill(shape: number[], init: Init, rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  switch (init.kind) {
    case 'zeros':
      break;
    case 'ones':
      out.fill(1);
      break;
    case 'normal':
      for (let i = 0; i < n; i++) out[i] = rng.normal() * init.std;
      break;
    case 'uniform':
      for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * init.limit;
      break;
  }
  return out;
}

/**
 * Named trainable variables of one model. Names are slash paths ("encoder/down0/res1/conv1/w"):
 * they are the keys of checkpoints and of optimizer state.
 */
export class ParamStore {
  readonly vars = new Map<string, tf.Variable>();

  /**
   * `budget`: when the store is built to receive a checkpoint: the checkpoint's tensors (name -> shape) and how to
   * name it. A parameter whose name or shape the checkpoint does not have is not allocated (a zero-size placeholder
   * stands in while the model is built, and assertMatches() then lists every difference), so a config edited or
   * corrupted to describe a larger model (width 8192, depth 64) allocates nothing beyond what weights.bin holds.
   */
  constructor(
    private readonly rng: Rng,
    private readonly budget?: { shapes: Map<string, { shape: number[]; dtype: string }>; where: string },
  ) {}

  /** Parameters the config asked for that the checkpoint lacks or holds in another shape (not allocated). */
  private readonly unmatched = new Map<string, number[]>();
  private readonly placeholders: tf.Variable[] = [];

  /** Creates a variable; throws if the name exists (two layers sharing a name is always a bug). */
  create(name: string, shape: number[], init: Init, trainable = true): tf.Variable {
    if (this.vars.has(name) || this.unmatched.has(name)) throw new Error(`parameter ${name} created twice`);
    if (this.budget) {
      const ck = this.budget.shapes.get(name);
      if (!ck || ck.shape.join(',') !== shape.join(',')) {
        this.unmatched.set(name, shape);
        const empty = tf.zeros([0]);
        const placeholder = tf.variable(empty, false);
        empty.dispose();
        this.placeholders.push(placeholder);
        return placeholder;
      }
    }
    // tfjs variable names are process-global; ours live in this map so several models can coexist in one process.
    const initial = tf.tensor(fill(shape, init, this.rng), shape, 'float32');
    const v = tf.variable(initial, trainable);
    initial.dispose(); // the variable holds its own copy
    this.vars.set(name, v);
    return v;
  }

  /**
   * For a store built against a checkpoint: throws one UserError line listing every parameter the model and the
   * checkpoint disagree on (names and shapes; the format of assignParams), disposing what was allocated.
   */
  assertMatches(): void {
    if (!this.budget) return;
    const model = new Map<string, { shape: number[] }>([...this.vars].map(([n, v]) => [n, { shape: v.shape }]));
    for (const [n, shape] of this.unmatched) model.set(n, { shape });
    const mismatch = describeMismatch(model, this.budget.shapes);
    if (mismatch) {
      this.dispose();
      throw new UserError(`${this.budget.where}: checkpoint does not match the model: ${mismatch}`);
    }
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`unknown parameter ${name}`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  /** Names of variables under `prefix/`. */
  under(prefix: string): string[] {
    return [...this.vars.keys()].filter((k) => k.startsWith(prefix + '/'));
  }

  trainable(): Map<string, tf.Variable> {
    return new Map([...this.vars].filter(([, v]) => v.trainable));
  }

  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.placeholders.splice(0)) v.dispose();
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
