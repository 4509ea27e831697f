import * as tf from '@tensorflow/tfjs';
import { UserError } from '@factorgen/tfjs-ext';
import { type Rng, disposeCache, type KVCache } from '@factorgen/nn';
import { type Generator, seqLen } from './config';
import { backboneForward, embedClass, embedTokens } from './gpt';
import { headForward, headSlots, parallelLogits } from './head';

/**
 * cfgScale: classifier-free guidance (1 = conditional only, 0 = unconditional); temperature: <= 0 means greedy
 * (argmax); topK: keep the k largest logits (0 = off); topP: nucleus mass (1 = off); rng: the categorical draws;
 * useCache: incremental decoding with KV caches (false recomputes the whole prefix every step); onProgress: called
 * after each raster position with (positions done, positions in all), e.g. for a progress bar (every image of the batch
 * advances together).
 */
export type SampleOptions = {
  cfgScale: number;
  temperature: number;
  topK: number;
  topP: number;
  rng: Rng;
  useCache: boolean;
  onProgress?: SampleProgress;
};

/**
 * Sampling progress: `done` of `total` decoding positions are finished. A returned promise is awaited before the
 * next position (a web page yields there so it can repaint its progress bar).
 */
export type SampleProgress = (done: number, total: number) => void | Promise<void>;

/** Logits on the host: float32 as read from the model, float64 once guidance combined them. */
export type HostLogits = Float32Array | Float64Array;

/**
 * Guided logits: uncond + scale * (cond - uncond), elementwise, in float64 (so a scale like 1e39 does not overflow as it
 * would in float32; beyond float64's range a value is clamped to +-Number.MAX_VALUE). cond, uncond: [n] -> [n].
 * scale = 1 returns an exact copy of cond (not u + (c - u), which can differ in the last bit).
 */
export function cfgCombine(cond: HostLogits, uncond: HostLogits, scale: number): Float64Array {
  if (cond.length !== uncond.length) throw new Error(`cfgCombine: lengths ${cond.length} and ${uncond.length} differ`);
  if (scale === 1) return Float64Array.from(cond);
  const out = new Float64Array(cond.length);
  for (let i = 0; i < cond.length; i++) {
    const g = uncond[i] + scale * (cond[i] - uncond[i]);
    out[i] = g === Infinity ? Number.MAX_VALUE : g === -Infinity ? -Number.MAX_VALUE : g;
  }
  return out;
}

/**
 * Keeps the k largest logits, the rest become -Infinity. logits: [V] -> new [V]. Ties with the k-th largest value are
 * all kept (as LlamaGen/HF's `logits < kth` filter), so more than k may survive. k <= 0 or k >= V: unchanged copy.
 */
export function topKMask(logits: HostLogits, k: number): Float64Array {
  const out = Float64Array.from(logits);
  if (k <= 0 || k >= logits.length) return out;
  const sorted = Float64Array.from(logits).sort(); // ascending
  const kth = sorted[logits.length - k];
  for (let i = 0; i < out.length; i++) if (!(out[i] >= kth)) out[i] = -Infinity;
  return out;
}

/**
 * Nucleus filter: keeps the most probable tokens until their softmax mass reaches p (the smallest such prefix; a
 * token is kept iff the mass strictly above it is < p, with 1e-9 slack so that a mass equal to p counts as reached),
 * plus every token tied with the last one kept; the top token always survives. logits: [V] (-Infinity allowed)
 * -> new [V] with -Infinity for the removed. p >= 1: unchanged copy.
 */
export function topPMask(logits: HostLogits, p: number): Float64Array {
  const out = Float64Array.from(logits);
  if (p >= 1) return out;
  const probs = softmax64(logits);
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
  let mass = 0;
  let lastKept = logits[order[0]];
  for (let i = 0; i < order.length; i++) {
    if (i > 0 && !(mass < p - 1e-9)) break;
    lastKept = logits[order[i]];
    mass += probs[order[i]];
  }
  for (let i = 0; i < out.length; i++) if (!(out[i] >= lastKept)) out[i] = -Infinity;
  return out;
}

/** Softmax in float64. logits: [V] (-Infinity allowed, not all) -> probabilities [V]. */
function softmax64(logits: HostLogits): Float64Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    p[i] = logits[i] === -Infinity ? 0 : Math.exp(logits[i] - max);
    sum += p[i];
  }
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/**
 * Draws one token from one row of (guided) logits: top-k, then temperature, then top-p, then a categorical draw
 * with one rng.next() (none when greedy: temperature <= 0 takes the first argmax). logits: [V] -> index.
 * Stable for every finite temperature: the logits are scaled as (l - max) / T in float64, which is 0 for the largest
 * and <= 0 or -Infinity for the rest, so a tiny T (1e-40) tends to greedy instead of overflowing to Infinity and
 * NaN (which made every draw fall through to the last index). A NaN logit (broken weights) is an error.
 */
export function chooseToken(logits: HostLogits, opts: Pick<SampleOptions, 'temperature' | 'topK' | 'topP'>, rng: Rng): number {
  let best = 0;
  for (let i = 0; i < logits.length; i++) {
    if (Number.isNaN(logits[i])) throw new UserError(`sample: the generator produced a NaN logit (its weights hold NaN or Infinity)`);
    if (logits[i] > logits[best]) best = i;
  }
  if (opts.temperature <= 0) return best;
  // top-k first: it keeps the same tokens before and after scaling by a positive temperature
  let l: Float64Array = opts.topK > 0 ? topKMask(logits, opts.topK) : Float64Array.from(logits);
  const max = Math.min(l[best], Number.MAX_VALUE); // the argmax always survives top-k
  for (let i = 0; i < l.length; i++) l[i] = l[i] === -Infinity ? -Infinity : (Math.min(l[i], Number.MAX_VALUE) - max) / opts.temperature;
  if (opts.topP < 1) l = topPMask(l, opts.topP);
  const probs = softmax64(l);
  const u = rng.next();
  let acc = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    acc += probs[i];
    last = i;
    if (u < acc) return i;
  }
  return last; // u landed in the rounding gap at the top
}

/** Marks a cache made inside a tidy as outliving it (the decoding loop disposes it when replaced). */
function keepCache(cache: KVCache): KVCache {
  for (const { k, v } of cache) {
    tf.keep(k);
    tf.keep(v);
  }
  return cache;
}

/** Picks the B tokens of sub-codebook k at position t from the guided logits [B * V_k] (row-major). */
type Picker = (t: number, k: number, guided: HostLogits) => Int32Array;

/**
 * The decoding loop shared by sampling and the logit trace. Rows are [cond (B); null class (B)] when cfgScale != 1,
 * else just the B conditional rows; each picked token is written to both halves. Returns tokens [B*T*K].
 * Reads the logits back once per (position, sub-codebook): the draw happens on the host.
 */
async function decode(
  gen: Generator,
  labels: Int32Array,
  cfgScale: number,
  useCache: boolean,
  pick: Picker,
  onProgress?: SampleProgress,
): Promise<Int32Array> {
  const { cfg } = gen;
  const T = seqLen(cfg);
  const Vs = cfg.subCodebookSizes;
  const K = Vs.length;
  const B = labels.length;
  if (B === 0) return new Int32Array(0);
  for (const l of labels) if (!(l >= 0 && l <= cfg.numClasses)) throw new Error(`sample: label ${l} outside [0, ${cfg.numClasses}]`);
  const guided = cfgScale !== 1;
  const R = guided ? 2 * B : B;
  const rowLabels = new Int32Array(R);
  rowLabels.set(labels);
  if (guided) rowLabels.fill(cfg.numClasses, B);
  const out = new Int32Array(B * T * K);
  /** Tokens of positions [from, to) for all R rows: int32 [R, to-from, K]. */
  const prefix = (from: number, to: number): tf.Tensor3D => {
    const L = to - from;
    const buf = new Int32Array(R * L * K);
    for (let r = 0; r < R; r++) {
      const b = r % B;
      buf.set(out.subarray((b * T + from) * K, (b * T + to) * K), r * L * K);
    }
    return tf.tensor3d(buf, [R, L, K], 'int32');
  };
  /** Sub-tokens of position t, sub-codebooks [from, to), for all R rows: int32 [R, to-from]. */
  const subs = (t: number, from: number, to: number): tf.Tensor2D => {
    const buf = new Int32Array(R * (to - from));
    for (let r = 0; r < R; r++) for (let j = from; j < to; j++) buf[r * (to - from) + j - from] = out[((r % B) * T + t) * K + j];
    return tf.tensor2d(buf, [R, to - from], 'int32');
  };
  /** Reads logits [R, V], combines guidance, picks, records. Disposes `logits`. */
  const consume = async (t: number, k: number, logits: tf.Tensor2D): Promise<void> => {
    let all: Float32Array;
    try {
      all = (await logits.data()) as Float32Array;
    } finally {
      logits.dispose();
    }
    const n = B * Vs[k];
    const g = guided ? cfgCombine(all.subarray(0, n), all.subarray(n, 2 * n), cfgScale) : all.subarray(0, n);
    const chosen = pick(t, k, g);
    for (let b = 0; b < B; b++) out[(b * T + t) * K + k] = chosen[b];
  };

  let cache: KVCache | null = null;
  try {
    for (let t = 0; t < T; t++) {
      const h = tf.tidy(() => {
        if (!useCache) {
          const parts = [embedClass(gen, tf.tensor1d(rowLabels, 'int32'))];
          if (t > 0) parts.push(embedTokens(gen, prefix(0, t)));
          const x = parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor3D);
          const full = backboneForward(gen, x, 0, null, null).h;
          return tf.reshape(tf.slice(full, [0, t, 0], [R, 1, cfg.width]), [R, cfg.width]) as tf.Tensor2D;
        }
        const x = t === 0 ? embedClass(gen, tf.tensor1d(rowLabels, 'int32')) : embedTokens(gen, prefix(t - 1, t));
        const r = backboneForward(gen, x, t, cache, null);
        const old = cache;
        cache = keepCache(r.cache);
        disposeCache(old);
        return tf.reshape(r.h, [R, cfg.width]) as tf.Tensor2D;
      });
      try {
        if (cfg.headMode === 'parallel') {
          const logits = tf.tidy(() => parallelLogits(gen, h));
          try {
            for (let k = 0; k < K; k++) await consume(t, k, logits[k]);
          } finally {
            tf.dispose(logits); // only those a failed read left behind remain
          }
          await onProgress?.(t + 1, T);
          continue;
        }
        let headCache: KVCache | null = null;
        try {
          for (let k = 0; k < K; k++) {
            const logits = tf.tidy(() => {
              if (!useCache) {
                const x = headSlots(gen, 0, h, k > 0 ? subs(t, 0, k) : null);
                const r = headForward(gen, x, 0, null, null);
                return r.logits[k];
              }
              const x = k === 0 ? headSlots(gen, 0, h, null) : headSlots(gen, k, null, subs(t, k - 1, k));
              const r = headForward(gen, x, k, headCache, null);
              const old = headCache;
              headCache = keepCache(r.cache);
              disposeCache(old);
              return r.logits[0];
            });
            await consume(t, k, logits);
          }
        } finally {
          disposeCache(headCache);
        }
        await onProgress?.(t + 1, T);
      } finally {
        h.dispose();
      }
    }
  } finally {
    disposeCache(cache);
  }
  return out;
}

/**
 * Samples B token grids. labels: [B] in [0, numClasses] (numClasses = unconditional) -> tokens [B*T*K] (image-major,
 * then raster position, then sub-codebook). Deterministic given opts.rng's state; the draws happen in the order
 * position, sub-codebook, image, so the cached and uncached paths draw the same numbers.
 */
export async function sample(gen: Generator, labels: Int32Array, opts: SampleOptions): Promise<Int32Array> {
  const B = labels.length;
  if (!Number.isFinite(opts.cfgScale)) throw new Error(`sample: cfgScale must be finite (got ${opts.cfgScale})`);
  if (!Number.isFinite(opts.temperature)) throw new Error(`sample: temperature must be finite (got ${opts.temperature})`);
  if (!(Number.isInteger(opts.topK) && opts.topK >= 0)) throw new Error(`sample: topK must be an integer >= 0 (got ${opts.topK})`);
  if (!(opts.topP > 0 && opts.topP <= 1)) throw new Error(`sample: topP must be in (0, 1] (got ${opts.topP})`);
  return decode(gen, labels, opts.cfgScale, opts.useCache, (_t, k, guided) => {
    const V = gen.cfg.subCodebookSizes[k];
    const chosen = new Int32Array(B);
    for (let b = 0; b < B; b++) chosen[b] = chooseToken(guided.subarray(b * V, (b + 1) * V), opts, opts.rng);
    return chosen;
  }, opts.onProgress);
}

/**
 * For tests: feeds a given token sequence through the decoding loop and returns the guided logits of every step,
 * trace[t][k]: [B * V_k], by the cached path (useCache) or by recomputing the prefix each step.
 * tokens: [B*T*K] as returned by sample, labels: [B].
 */
export async function forcedStepLogits(
  gen: Generator,
  tokens: Int32Array,
  labels: Int32Array,
  opts: { cfgScale: number; useCache: boolean },
): Promise<Float32Array[][]> {
  const { cfg } = gen;
  const T = seqLen(cfg);
  const K = cfg.subCodebookSizes.length;
  const B = labels.length;
  if (tokens.length !== B * T * K) throw new Error(`forcedStepLogits: ${tokens.length} tokens, expected ${B * T * K}`);
  const trace: Float32Array[][] = Array.from({ length: T }, () => []);
  await decode(gen, labels, opts.cfgScale, opts.useCache, (t, k, guided) => {
    trace[t][k] = Float32Array.from(guided);
    const chosen = new Int32Array(B);
    for (let b = 0; b < B; b++) chosen[b] = tokens[(b * T + t) * K + k];
    return chosen;
  });
  return trace;
}
