import seedrandom from 'seedrandom';

/** The serializable state of an Rng (alea's internal state). */
export type RngState = { seed: string; alea: seedrandom.State.Alea; spare: number | null };

/**
 * Seeded random numbers for everything JS-side: data order, augmentation, initializers, sampling.
 * The state can be saved to a checkpoint and restored exactly, so resumed runs draw the same numbers.
 */
export class Rng {
  private prng: seedrandom.StatefulPRNG<seedrandom.State.Alea>;
  private spare: number | null = null;

  constructor(readonly seed: string, state?: seedrandom.State.Alea) {
    // alea: fast, small, and its state round-trips through JSON.
    this.prng = seedrandom.alea(seed, { state: state ?? true });
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.prng();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.prng() * n);
  }

  /** Standard normal (Box-Muller, the spare value is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.prng();
    const v = this.prng();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates permutation of [0, n). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** A new independent stream derived from this seed and a name (does not advance this one). */
  derive(name: string): Rng {
    return new Rng(`${this.seed}/${name}`);
  }

  /** A snapshot for checkpoints (JSON-safe), including the pending Box-Muller value. */
  state(): RngState {
    return { seed: this.seed, alea: this.prng.state(), spare: this.spare };
  }

  static fromState(s: RngState): Rng {
    const rng = new Rng(s.seed, s.alea);
    rng.spare = s.spare;
    return rng;
  }
}
