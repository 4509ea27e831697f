import * as tf from '@tensorflow/tfjs';
import { dropout, recompute, recomputeKeepingProducts, type KeptMatMul } from '@factorgen/tfjs-ext';
import { linear, type ParamStore, type Rng } from '@factorgen/nn';

/** A linear layer x [..., C] @ w [C, H] -> [..., H] (the block's projections; see blockTraining). */
export type Linear = (x: tf.Tensor, w: tf.Tensor) => tf.Tensor;

/** linear(x, w) with its 2-D product computed by mm (same ops and shapes, so the same bits). */
function linearVia(mm: KeptMatMul): Linear {
  return (x, w) => {
    const inF = w.shape[0] as number;
    return tf.reshape(mm(tf.reshape(x, [-1, inF]) as tf.Tensor2D, w as tf.Tensor2D), [...x.shape.slice(0, -1), w.shape[1] as number]);
  };
}

/**
 * Gradient checkpointing of the training forward's blocks (values and gradients are the same bit for bit in all
 * three; only memory and time differ). 'none': the tape keeps every activation. 'keepProducts': it keeps each block's
 * input and its projections' outputs (q, k, v, out, gate, up, down) and recomputes the rest (norms, RoPE, attention,
 * SwiGLU's gating) in the backward pass. 'all': it keeps only each block's input and reruns the whole block.
 */
export type Recompute = 'none' | 'keepProducts' | 'all';

/** Dropout for one forward pass: rate and the Rng that seeds each dropout call (null = inference). */
export type DropoutCtx = { rate: number; rng: Pick<Rng, 'int'> } | null;

/** dropout (shared's, not tf.dropout) with a seed drawn from the context's Rng; identity when ctx is null or the rate is 0. */
export function maybeDropout<T extends tf.Tensor>(x: T, ctx: DropoutCtx): T {
  if (!ctx || ctx.rate <= 0) return x;
  return dropout(x, ctx.rate, ctx.rng.int(2 ** 31 - 1));
}

/** RMSNorm over the last axis. x: [..., C], weight: [C] -> [..., C]. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps = 1e-6): tf.Tensor {
  const ms = tf.mean(tf.mul(x, x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight);
}

/**
 * SwiGLU MLP: (silu(x Wg) * (x Wu)) Wd. x: [..., C], wGate, wUp: [C, H], wDown: [H, C] -> [..., C].
 * Separate gate/up weights rather than one fused matMul + split: split is a slow strided copy on the cpu backend.
 */
export function swiglu(x: tf.Tensor, wGate: tf.Tensor, wUp: tf.Tensor, wDown: tf.Tensor, lin: Linear = linear): tf.Tensor {
  const gate = lin(x, wGate);
  return lin(tf.mul(tf.mul(gate, tf.sigmoid(gate)), lin(x, wUp)), wDown);
}

/** Rotary tables in the rotate-half layout: row p holds [cos(theta_p) | cos(theta_p)], same for sin. */
export type RopeTable = { cos: Float32Array; sin: Float32Array; length: number; headDim: number };

const ropeCache = new Map<string, RopeTable>();

/**
 * Rotary tables for the backbone's input sequence [class, x_0, ..., x_{T-2}] (length T = gridH*gridW).
 * Position 0 (the class token) gets cos = 1, sin = 0 (`classRope` 'identity': its q and k pass unrotated) or
 * cos = sin = 0 ('zero': LlamaGen's precompute_freqs_cis_2d, whose cls_token_num rows are zeros, as FQGAN's FAR: its
 * q and k become zero, so every query gives the class key the score 0 and the class token attends uniformly); position p >= 1 holds token x_{p-1}, rotated by its
 * raster index p-1 ('1d') or by its (row, col) on the grid ('2d': the first headDim/4 channel pairs by the row, the
 * rest by the column). Pair j of an axis with n pairs turns at base^(-j/n) per step (= base^(-2j/d) over its d = 2n
 * channels), as in LlamaGen. Memoized.
 */
export function backboneRope(mode: '1d' | '2d', gridH: number, gridW: number, headDim: number, base = 10000, classRope: 'identity' | 'zero' = 'identity'): RopeTable {
  const key = `${mode}:${gridH}:${gridW}:${headDim}:${base}:${classRope}`;
  const hit = ropeCache.get(key);
  if (hit) return hit;
  const length = gridH * gridW;
  const half = headDim / 2;
  const cos = new Float32Array(length * headDim);
  const sin = new Float32Array(length * headDim);
  const axisPairs = mode === '2d' ? half / 2 : half;
  for (let p = 0; p < length; p++) {
    const idx = p - 1;
    for (let m = 0; m < half; m++) {
      let angle = 0;
      if (p > 0) {
        if (mode === '1d') angle = idx * Math.pow(base, (-2 * m) / (2 * axisPairs));
        else {
          const j = m % axisPairs;
          const coord = m < axisPairs ? Math.floor(idx / gridW) : idx % gridW;
          angle = coord * Math.pow(base, (-2 * j) / (2 * axisPairs));
        }
      }
      const zero = p === 0 && classRope === 'zero';
      const c = zero ? 0 : Math.cos(angle);
      const s = zero ? 0 : Math.sin(angle);
      cos[p * headDim + m] = c;
      cos[p * headDim + half + m] = c;
      sin[p * headDim + m] = s;
      sin[p * headDim + half + m] = s;
    }
  }
  const table = { cos, sin, length, headDim };
  ropeCache.set(key, table);
  return table;
}

/** Rows [start, start+count) of a rope table as tensors cos, sin: [count, headDim]. */
export function ropeSlice(table: RopeTable, start: number, count: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  if (start + count > table.length) throw new Error(`rope: positions ${start}..${start + count - 1} beyond table length ${table.length}`);
  const d = table.headDim;
  return {
    cos: tf.tensor2d(table.cos.subarray(start * d, (start + count) * d), [count, d]),
    sin: tf.tensor2d(table.sin.subarray(start * d, (start + count) * d), [count, d]),
  };
}

const rotateCache = new Map<number, Float32Array>();

/** P: [dh, dh] with x @ P = concat(-x2, x1) for x = concat(x1, x2) (the rotate-half of RoPE). */
function rotateHalfMatrix(dh: number): Float32Array {
  let m = rotateCache.get(dh);
  if (!m) {
    const half = dh / 2;
    m = new Float32Array(dh * dh);
    for (let j = 0; j < half; j++) {
      m[(j + half) * dh + j] = -1;
      m[j * dh + j + half] = 1;
    }
    rotateCache.set(dh, m);
  }
  return m;
}

/**
 * Applies a rotary embedding: x * cos + rotateHalf(x) * sin. x: [B, heads, L, dh], cos/sin: [L, dh] -> same shape.
 * rotateHalf is a 2-D matMul with a constant signed permutation instead of split + concat: strided slices are slow on
 * the cpu backend, and the matMul costs dh MACs per element, small next to the projections.
 */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const dh = x.shape[3];
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, dh]), tf.tensor2d(rotateHalfMatrix(dh), [dh, dh])), x.shape);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
}

/** Keys and values of one attention layer for the positions seen so far: k, v: [B, heads, t, dh]. */
export type LayerKV = { k: tf.Tensor4D; v: tf.Tensor4D };
/** One LayerKV per block (backbone: per depth; head: per headLayers). */
export type KVCache = LayerKV[];

/** Number of cached positions (0 for an empty cache). */
export function cacheLength(cache: KVCache | null): number {
  return cache && cache.length > 0 ? (cache[0].k.shape[2] as number) : 0;
}

export function disposeCache(cache: KVCache | null): void {
  if (!cache) return;
  for (const { k, v } of cache) {
    k.dispose();
    v.dispose();
  }
}

/** Additive causal mask [L, past+L]: query i (absolute past+i) sees keys j <= past+i. */
function causalMask(past: number, L: number): tf.Tensor2D {
  const total = past + L;
  const m = new Float32Array(L * total);
  for (let i = 0; i < L; i++) for (let j = past + i + 1; j < total; j++) m[i * total + j] = -1e9;
  return tf.tensor2d(m, [L, total]);
}

/**
 * Multi-head causal self-attention with an optional KV cache.
 * x: [B, L, C] (the L new positions), w: the q, k, v and out projections, each [C, C], rope: cos/sin [L, dh] for the
 * new positions or null, past: cached keys/values of the earlier positions ([B, heads, t, dh]) or null.
 * Returns y: [B, L, C] and kv: the keys/values of all t+L positions (concatenated; the caller owns both).
 * Only the new positions are queried, so with a cache one decoding step costs O(t), not O(t^2). lin: how the
 * projections are computed (see blockTraining).
 */
export function causalAttention(
  x: tf.Tensor3D,
  w: { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor; out: tf.Tensor },
  heads: number,
  rope: { cos: tf.Tensor2D; sin: tf.Tensor2D } | null,
  past: LayerKV | null,
  lin: Linear = linear,
): { y: tf.Tensor3D; kv: LayerKV } {
  const [B, L, C] = x.shape;
  const dh = C / heads;
  // [B, L, C] -> [B, heads, L, dh]; three matMuls rather than a fused one + split (slow strided copy on cpu).
  const toHeads = (wt: tf.Tensor) => tf.transpose(tf.reshape(lin(x, wt), [B, L, heads, dh]), [0, 2, 1, 3]) as tf.Tensor4D;
  let q = toHeads(w.q);
  let k = toHeads(w.k);
  let v = toHeads(w.v);
  if (rope) {
    q = applyRope(q, rope.cos, rope.sin);
    k = applyRope(k, rope.cos, rope.sin);
  }
  const pastLen = past ? (past.k.shape[2] as number) : 0;
  if (past) {
    k = tf.concat([past.k, k], 2);
    v = tf.concat([past.v, v], 2);
  }
  let scores = tf.matMul(tf.mul(q, 1 / Math.sqrt(dh)), k, false, true); // [B, heads, L, t+L]
  if (L > 1) scores = tf.add(scores, causalMask(pastLen, L));
  // No dropout on the attention probabilities (LlamaGen's default); residual branches get it in block().
  const ctx = tf.matMul(tf.softmax(scores, -1), v); // [B, heads, L, dh]
  const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B, L, C]);
  return { y: lin(merged, w.out) as tf.Tensor3D, kv: { k, v } };
}

/** Creates one pre-norm transformer block's parameters under `prefix` (see block()). */
export function createBlockParams(params: ParamStore, prefix: string, width: number, mlpHidden: number, depth: number): void {
  const std = 0.02;
  // GPT-2 style: residual output projections scaled down by depth so the residual stream's variance stays ~constant.
  const outStd = std / Math.sqrt(2 * depth);
  params.create(`${prefix}/norm1`, [width], { kind: 'ones' });
  for (const n of ['q', 'k', 'v']) params.create(`${prefix}/attn/${n}`, [width, width], { kind: 'normal', std });
  params.create(`${prefix}/attn/out`, [width, width], { kind: 'normal', std: outStd });
  params.create(`${prefix}/norm2`, [width], { kind: 'ones' });
  params.create(`${prefix}/mlp/gate`, [width, mlpHidden], { kind: 'normal', std });
  params.create(`${prefix}/mlp/up`, [width, mlpHidden], { kind: 'normal', std });
  params.create(`${prefix}/mlp/down`, [mlpHidden, width], { kind: 'normal', std: outStd });
}

/** The parameter names of one block, in the order blockWeights returns them. */
const blockParamNames = ['norm1', 'attn/q', 'attn/k', 'attn/v', 'attn/out', 'norm2', 'mlp/gate', 'mlp/up', 'mlp/down'] as const;

function blockWeights(params: ParamStore, prefix: string): tf.Tensor[] {
  return blockParamNames.map((n) => params.get(`${prefix}/${n}`));
}

/** The block on weights given in blockParamNames order (see block()). */
function blockOn(
  ws: tf.Tensor[],
  x: tf.Tensor3D,
  heads: number,
  rope: { cos: tf.Tensor2D; sin: tf.Tensor2D } | null,
  past: LayerKV | null,
  drop: DropoutCtx,
  lin: Linear = linear,
): { y: tf.Tensor3D; kv: LayerKV } {
  const [norm1, q, k, v, out, norm2, gate, up, down] = ws as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
  const a = causalAttention(rmsNorm(x, norm1) as tf.Tensor3D, { q, k, v, out }, heads, rope, past, lin);
  const h = tf.add(x, maybeDropout(a.y, drop)) as tf.Tensor3D;
  const m = swiglu(rmsNorm(h, norm2), gate, up, down, lin);
  return { y: tf.add(h, maybeDropout(m, drop)) as tf.Tensor3D, kv: a.kv };
}

/**
 * One pre-norm block: x + Attn(RMSNorm(x)), then + SwiGLU(RMSNorm(.)). x: [B, L, C] -> y: [B, L, C], kv as in
 * causalAttention.
 */
export function block(
  params: ParamStore,
  prefix: string,
  x: tf.Tensor3D,
  heads: number,
  rope: { cos: tf.Tensor2D; sin: tf.Tensor2D } | null,
  past: LayerKV | null,
  drop: DropoutCtx,
): { y: tf.Tensor3D; kv: LayerKV } {
  return blockOn(blockWeights(params, prefix), x, heads, rope, past, drop);
}

/**
 * block() without a cache, for training: the same output (and, under a tape, bit-identical gradients), with the
 * block's activations kept or recomputed in the backward pass as `mode` says (see Recompute, recompute and
 * recomputeKeepingProducts). Dropout seeds drawn in the forward pass are replayed in the recomputation.
 * x: [B, L, C] -> [B, L, C].
 */
export function blockTraining(
  params: ParamStore,
  prefix: string,
  x: tf.Tensor3D,
  heads: number,
  rope: { cos: tf.Tensor2D; sin: tf.Tensor2D } | null,
  drop: DropoutCtx,
  mode: Recompute,
): tf.Tensor3D {
  if (mode === 'none') return block(params, prefix, x, heads, rope, null, drop).y;
  const seeds: number[] = [];
  let runs = 0;
  const run = (lin: Linear, t: tf.Tensor[]): tf.Tensor => {
    const first = runs++ === 0;
    let i = 0;
    const ctx: DropoutCtx =
      drop && drop.rate > 0
        ? { rate: drop.rate, rng: { int: (n: number) => (first ? (seeds[seeds.length] = drop.rng.int(n)) : seeds[i++]!) } }
        : null;
    const r = rope ? { cos: t[10] as tf.Tensor2D, sin: t[11] as tf.Tensor2D } : null;
    return blockOn(t.slice(1, 10), t[0] as tf.Tensor3D, heads, r, null, ctx, lin).y;
  };
  const inputs = [x, ...blockWeights(params, prefix)];
  const constants = rope ? [rope.cos, rope.sin] : [];
  if (mode === 'all') return recompute((...t) => run(linear, t), inputs, constants) as tf.Tensor3D;
  return recomputeKeepingProducts((mm, ...t) => run(linearVia(mm), t), inputs, constants) as tf.Tensor3D;
}
