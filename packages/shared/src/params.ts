import * as tf from '@tensorflow/tfjs';
import { Rng } from './rng';
import { UserError } from './errors';

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
  private elements = 0;

  /**
   * `budget`: when the store is built to receive a checkpoint, the most float32 elements it may hold (what the
   * checkpoint's weights.bin holds, already checked against that file's byte length) and how to name the checkpoint.
   * A config edited or corrupted to describe a larger model is refused before the parameter that exceeds it is
   * allocated, instead of growing by gigabytes before the shapes are compared.
   */
  constructor(
    private readonly rng: Rng,
    private readonly budget?: { elements: number; where: string },
  ) {}

  /** Creates a variable; throws if the name exists (two layers sharing a name is always a bug). */
  create(name: string, shape: number[], init: Init, trainable = true): tf.Variable {
    if (this.vars.has(name)) throw new Error(`parameter ${name} created twice`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (this.budget && this.elements + size > this.budget.elements) {
      throw new UserError(
        `${this.budget.where}: config.json describes a larger model than weights.bin holds (${name} [${shape.join(',')}] alone brings it past the ${this.budget.elements} values in weights.bin); config.json does not belong to these weights`,
      );
    }
    this.elements += size;
    // tfjs variable names are process-global; ours live in this map so several models can coexist in one process.
    const initial = tf.tensor(fill(shape, init, this.rng), shape, 'float32');
    const v = tf.variable(initial, trainable);
    initial.dispose(); // the variable holds its own copy
    this.vars.set(name, v);
    return v;
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
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
