import * as tf from '@tensorflow/tfjs';
import type { Projection } from './linear';
import { applyRope } from './rope';

/**
 * The one scaled dot-product attention (Vaswani et al. 2017) of every model here: the tokenizer's VQGAN mid-block
 * (one head), FQGAN's alignment head, UniTok's attention projection (fused qkv, head averaging, optional causal mask)
 * and the generator's causal blocks (RoPE, KV cache). Callers differ in the order of a few float operations; those
 * are options, so each keeps its arithmetic bit for bit.
 */

/** Keys and values of one attention layer for the positions seen so far: k, v: [B, heads, t, dh]. */
export type LayerKV = { k: tf.Tensor4D; v: tf.Tensor4D };
/** One LayerKV per attention layer of a stack. */
export type KVCache = LayerKV[];

/** Number of cached positions (0 for an empty or null cache). */
export function cacheLength(cache: KVCache | null): number {
  return cache && cache.length > 0 ? (cache[0].k.shape[2] as number) : 0;
}

/** Disposes every key and value tensor of a cache (null: nothing). */
export function disposeCache(cache: KVCache | null): void {
  if (!cache) return;
  for (const { k, v } of cache) {
    k.dispose();
    v.dispose();
  }
}

/**
 * [B, L, heads*dh] -> [B, heads, L, dh] (head h = channels h*dh..(h+1)*dh-1). One head: a reshape (same data as the
 * transpose, without its copy). Throws when heads does not divide the width.
 */
export function splitHeads(x: tf.Tensor3D, heads: number): tf.Tensor4D {
  const [B, L, C] = x.shape;
  if (C % heads !== 0) throw new Error(`attention: width ${C} not divisible by ${heads} heads`);
  const dh = C / heads;
  if (heads === 1) return tf.reshape(x, [B, 1, L, dh]);
  return tf.transpose(tf.reshape(x, [B, L, heads, dh]), [0, 2, 1, 3]);
}

/**
 * [B, heads, L, dh] -> [B, L, heads*dh] ('concat', the inverse of splitHeads) or [B, L, dh] ('mean': the heads
 * averaged, UniTok's AttnProjection when it narrows).
 */
export function mergeHeads(x: tf.Tensor4D, merge: 'concat' | 'mean' = 'concat'): tf.Tensor3D {
  const [B, heads, L, dh] = x.shape;
  if (merge === 'mean') return tf.mean(x, 1);
  if (heads === 1) return tf.reshape(x, [B, L, dh]);
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, L, heads * dh]);
}

/**
 * Additive causal mask [L, past+L]: 0 where query i (absolute position past+i) may see key j (j <= past+i), -1e9
 * elsewhere (exp underflows to 0 in float32, without the NaN a -Infinity row could give).
 */
export function causalMask(past: number, L: number): tf.Tensor2D {
  const total = past + L;
  const m = new Float32Array(L * total);
  for (let i = 0; i < L; i++) for (let j = past + i + 1; j < total; j++) m[i * total + j] = -1e9;
  return tf.tensor2d(m, [L, total]);
}

export type AttentionOptions = {
  /** number of heads; must divide the width of q, k and v */
  heads: number;
  /** 'causal': query i sees keys 0..past+i; 'none' (default): every key */
  mask?: 'none' | 'causal';
  /**
   * where 1/sqrt(dh) is applied: 'scores' (default): softmax((q k^T) / sqrt(dh)), as VQGAN, FQGAN and UniTok;
   * 'query': softmax((q / sqrt(dh)) k^T), as LlamaGen's generator. Equal in exact arithmetic, not in float32.
   */
  scale?: 'scores' | 'query';
  /** rotary tables for the L new positions, cos and sin [L, dh], applied to q and k; null/absent: no RoPE */
  rope?: { cos: tf.Tensor2D; sin: tf.Tensor2D } | null;
  /** keys/values of the earlier positions ([B, heads, t, dh]) or null: the new ones attend to them as well */
  past?: LayerKV | null;
  /** how the heads' outputs are combined (see mergeHeads); default 'concat' */
  merge?: 'concat' | 'mean';
};

/**
 * Multi-head attention on projected q, k, v: [B, L, C] (C = heads * dh; the L new positions) -> y: [B, L, C] ('concat')
 * or [B, L, dh] ('mean'), and kv: the keys/values [B, heads, t+L, dh] of all positions (past ones first; the caller
 * owns them). Only the new positions are queried, so with a cache one decoding step costs O(t), not O(t^2). The
 * causal mask is added only when L > 1 (a single new query sees every key). No dropout on the probabilities.
 */
export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, opts: AttentionOptions): { y: tf.Tensor3D; kv: LayerKV } {
  const { heads, mask = 'none', scale = 'scores', rope = null, past = null, merge = 'concat' } = opts;
  const L = q.shape[1];
  let qh = splitHeads(q, heads);
  let kh = splitHeads(k, heads);
  let vh = splitHeads(v, heads);
  const dh = qh.shape[3];
  if (rope) {
    qh = applyRope(qh, rope.cos, rope.sin);
    kh = applyRope(kh, rope.cos, rope.sin);
  }
  const pastLen = past ? (past.k.shape[2] as number) : 0;
  if (past) {
    kh = tf.concat([past.k, kh], 2);
    vh = tf.concat([past.v, vh], 2);
  }
  // 4-D x 4-D products: the batched-matMul gradient trap is only for a 2-D weight.
  const s = 1 / Math.sqrt(dh);
  let scores = scale === 'query' ? tf.matMul(tf.mul(qh, s), kh, false, true) : tf.mul(tf.matMul(qh, kh, false, true), s); // [B, heads, L, t+L]
  if (mask === 'causal' && L > 1) scores = tf.add(scores, causalMask(pastLen, L));
  const ctx = tf.matMul(tf.softmax(scores, -1), vh) as tf.Tensor4D; // [B, heads, L, dh]
  return { y: mergeHeads(ctx, merge), kv: { k: kh, v: vh } };
}

/**
 * Self-attention with its projections: out(attention(q(x), k(x), v(x))). x: [B, L, Cin] -> y: [B, L, Cout] and kv as
 * in attention. The projections run in the order q, k, v, out (gradient checkpointing that keeps products relies on it).
 */
export function selfAttention(
  x: tf.Tensor3D,
  proj: { q: Projection; k: Projection; v: Projection; out: Projection },
  opts: AttentionOptions,
): { y: tf.Tensor3D; kv: LayerKV } {
  const q = proj.q(x) as tf.Tensor3D;
  const k = proj.k(x) as tf.Tensor3D;
  const v = proj.v(x) as tf.Tensor3D;
  const a = attention(q, k, v, opts);
  return { y: proj.out(a.y) as tf.Tensor3D, kv: a.kv };
}
