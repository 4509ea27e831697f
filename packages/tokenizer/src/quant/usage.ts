import * as tf from '@tensorflow/tfjs';

/** Codebook usage of one sub-codebook: fraction of its codes seen at least once, and exp(entropy) of the code histogram. */
export type CodeUsage = { used: number; perplexity: number };

/**
 * Per-sub-codebook code counts accumulated over batches. `sizes[k]` is sub-codebook k's size; indices carry
 * K = sizes.length on the last axis. With `window` > 0 only the last `window` added batches count
 * (older ones are subtracted again), otherwise everything since the last reset().
 */
export class CodeHistogram {
  readonly counts: Float64Array[];
  private readonly batches: Int32Array[] = [];

  constructor(readonly sizes: number[], readonly window = 0) {
    this.counts = sizes.map((v) => new Float64Array(v));
  }

  /** indices: the flat data of int32 [..., K] (read a tensor's with `await t.data()`, or use DeviceCodeHistogram). */
  add(data: Int32Array): void {
    const K = this.sizes.length;
    if (data.length % K !== 0) throw new Error(`CodeHistogram.add: ${data.length} indices not a multiple of K ${K}`);
    for (let i = 0; i < data.length; i++) {
      const k = i % K;
      const c = data[i];
      if (c < 0 || c >= this.sizes[k]) throw new Error(`CodeHistogram.add: index ${c} out of range for sub-codebook ${k} (size ${this.sizes[k]})`);
    }
    this.count(data, 1);
    if (this.window > 0) {
      this.batches.push(data.slice());
      if (this.batches.length > this.window) this.count(this.batches.shift()!, -1);
    }
  }

  private count(data: Int32Array, sign: 1 | -1): void {
    const K = this.sizes.length;
    for (let i = 0; i < data.length; i++) this.counts[i % K][data[i]] += sign;
  }

  /** Fraction of codes used at least once, per sub-codebook (0 before any add). */
  usage(): number[] {
    return this.counts.map((cnt) => cnt.reduce((a, c) => a + (c > 0 ? 1 : 0), 0) / cnt.length);
  }

  /** exp(Shannon entropy) of the normalized histogram, per sub-codebook: 1 = one code, size = uniform (0 before any add). */
  perplexity(): number[] {
    return this.counts.map((cnt) => {
      const total = cnt.reduce((a, c) => a + c, 0);
      if (total === 0) return 0;
      let h = 0;
      for (const c of cnt) if (c > 0) h -= (c / total) * Math.log(c / total);
      return Math.exp(h);
    });
  }

  /** Codes of sub-codebook k never hit in the counted batches. */
  unused(k: number): number[] {
    const out: number[] = [];
    this.counts[k].forEach((c, i) => {
      if (c === 0) out.push(i);
    });
    return out;
  }

  stats(): CodeUsage[] {
    const u = this.usage();
    const p = this.perplexity();
    return u.map((used, k) => ({ used, perplexity: p[k] }));
  }

  reset(): void {
    for (const c of this.counts) c.fill(0);
    this.batches.length = 0;
  }

  /**
   * The histogram as plain arrays, for checkpoints (dead-code restarts read it, so an exact resume needs it):
   * counts [sum of sizes] (sub-codebook 0's codes first), the window's batches flat (oldest first) and their lengths.
   */
  exportState(): { counts: Int32Array; window: Int32Array; windowSizes: Int32Array } {
    const counts = new Int32Array(this.sizes.reduce((a, v) => a + v, 0));
    let o = 0;
    for (const c of this.counts) {
      counts.set(c, o);
      o += c.length;
    }
    const window = new Int32Array(this.batches.reduce((a, b) => a + b.length, 0));
    o = 0;
    for (const b of this.batches) {
      window.set(b, o);
      o += b.length;
    }
    return { counts, window, windowSizes: Int32Array.from(this.batches, (b) => b.length) };
  }

  /**
   * Restores exportState() output. Returns false (and leaves the histogram empty) when it does not fit these sizes.
   * A smaller window than the saved one keeps only the newest batches.
   */
  importState(s: { counts: Int32Array; window: Int32Array; windowSizes: Int32Array }): boolean {
    this.reset();
    const K = this.sizes.length;
    const total = this.sizes.reduce((a, v) => a + v, 0);
    const sumSizes = s.windowSizes.reduce((a, v) => a + v, 0);
    if (s.counts.length !== total || sumSizes !== s.window.length || s.windowSizes.some((n) => n % K !== 0)) return false;
    for (let i = 0; i < s.window.length; i++) if (s.window[i] < 0 || s.window[i] >= this.sizes[i % K]) return false;
    let o = 0;
    for (const c of this.counts) {
      c.set(s.counts.subarray(o, o + c.length));
      o += c.length;
    }
    if (this.window > 0) {
      o = 0;
      for (const n of s.windowSizes) {
        this.batches.push(s.window.slice(o, o + n));
        o += n;
      }
      while (this.batches.length > this.window) this.count(this.batches.shift()!, -1);
    }
    return true;
  }
}

/**
 * The same histogram kept on the device, for training: add() counts a batch of indices there (no read back, so a GPU
 * step does not wait on the host); read() brings the state over when usage is logged, codes are restarted or a
 * checkpoint is written. counts: float32 [sum of sizes] (sub-codebook k's codes at offset sizes[0] + ... + sizes[k-1];
 * float32 because webgpu's int32 unsortedSegmentSum returns garbage; integers are exact up to 2^24 per code, and a
 * resumed run reloads exactly what it saved); the window holds the last `window` batches' index tensors (to subtract
 * them again and to save them).
 */
export class DeviceCodeHistogram {
  private counts: tf.Tensor1D;
  private readonly batches: tf.Tensor1D[] = [];
  /** Added to sub-codebook k's indices to address its slice of `counts`: int32 [K]. */
  private readonly offsets: tf.Tensor1D;
  private readonly total: number;

  constructor(readonly sizes: number[], readonly window = 0) {
    this.total = sizes.reduce((a, v) => a + v, 0);
    this.counts = tf.zeros([this.total]);
    this.offsets = tf.tensor1d(sizes.map((_, k) => sizes.slice(0, k).reduce((a, v) => a + v, 0)), 'int32');
  }

  /** indices: int32 [..., K] (not disposed; values must lie in [0, sizes[k]), which the quantizer's argmin guarantees). */
  add(indices: tf.Tensor): void {
    const K = this.sizes.length;
    if (indices.shape[indices.rank - 1] !== K) throw new Error(`CodeHistogram.add: last axis ${indices.shape[indices.rank - 1]} != K ${K}`);
    if (indices.dtype !== 'int32') throw new Error(`CodeHistogram.add: indices are ${indices.dtype}, not int32`);
    const flat = tf.reshape(indices, [-1]) as tf.Tensor1D;
    const batch = this.window > 0 ? tf.keep(flat.clone()) : null;
    const next = tf.tidy(() => tf.add(this.counts, this.bincount(flat)) as tf.Tensor1D);
    flat.dispose();
    this.counts.dispose();
    this.counts = next;
    if (batch) {
      this.batches.push(batch);
      if (this.batches.length > this.window) {
        const old = this.batches.shift()!;
        const less = tf.tidy(() => tf.sub(this.counts, this.bincount(old)) as tf.Tensor1D);
        old.dispose();
        this.counts.dispose();
        this.counts = less;
      }
    }
  }

  /** Counts of one flat batch [N*K] (sub-codebook fastest) over all codes: float32 [total]. */
  private bincount(flat: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() => {
      const K = this.sizes.length;
      const ids = tf.reshape(tf.add(tf.reshape(flat, [-1, K]), this.offsets), [-1]) as tf.Tensor1D;
      return tf.unsortedSegmentSum(tf.ones(ids.shape), ids, this.total) as tf.Tensor1D;
    });
  }

  /** Fraction of codes used in the window, per sub-codebook, as device scalars (new tensors; the caller disposes them). */
  usageScalars(): tf.Scalar[] {
    let o = 0;
    return this.sizes.map((v) => {
      const start = o;
      o += v;
      return tf.tidy(() => tf.mean(tf.cast(tf.greater(tf.slice(this.counts, [start], [v]), 0), 'float32')) as tf.Scalar);
    });
  }

  /** The state on the host as a CodeHistogram (usage, perplexity, unused codes, exportState). One read of the device. */
  async read(): Promise<CodeHistogram> {
    const [counts, ...batches] = await Promise.all([this.counts.data(), ...this.batches.map((b) => b.data())]);
    const windowSizes = Int32Array.from(this.batches, (b) => b.size);
    const window = new Int32Array(windowSizes.reduce((a, v) => a + v, 0));
    let o = 0;
    for (const b of batches) {
      window.set(b as Int32Array, o);
      o += b.length;
    }
    const h = new CodeHistogram(this.sizes, this.window);
    if (!h.importState({ counts: Int32Array.from(counts), window, windowSizes })) throw new Error('DeviceCodeHistogram: inconsistent state');
    return h;
  }

  /** Restores CodeHistogram.exportState() output (false, leaving the histogram empty, when it does not fit). */
  importState(s: { counts: Int32Array; window: Int32Array; windowSizes: Int32Array }): boolean {
    // The host class validates and trims the window to this one's size; then its state is uploaded.
    const h = new CodeHistogram(this.sizes, this.window);
    const ok = h.importState(s);
    const e = h.exportState();
    this.reset();
    if (!ok) return false;
    this.counts.dispose();
    this.counts = tf.tensor1d(Float32Array.from(e.counts));
    let o = 0;
    for (const n of e.windowSizes) {
      this.batches.push(tf.tensor1d(e.window.slice(o, o + n), 'int32'));
      o += n;
    }
    return true;
  }

  reset(): void {
    this.counts.dispose();
    this.counts = tf.zeros([this.total]);
    tf.dispose(this.batches);
    this.batches.length = 0;
  }

  dispose(): void {
    tf.dispose([this.counts, this.offsets, ...this.batches]);
    this.batches.length = 0;
  }
}

/** One-shot usage of a single index array. indices: int32 [..., K] (flat); sizes: [K] sub-codebook sizes. */
export function usageStats(indices: Int32Array, sizes: number[]): CodeUsage[] {
  const h = new CodeHistogram(sizes);
  h.add(indices);
  return h.stats();
}
