import * as tf from '@tensorflow/tfjs';
import { dropout, recompute, recomputeKeepingProducts, type KeptMatMul } from '@factorgen/tfjs-ext';
import { type LayerKV, linear, type ParamStore, type Rng, rmsNorm, selfAttention, swiglu } from '@factorgen/nn';

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
  const proj = { q: (t: tf.Tensor) => lin(t, q), k: (t: tf.Tensor) => lin(t, k), v: (t: tf.Tensor) => lin(t, v), out: (t: tf.Tensor) => lin(t, out) };
  // LlamaGen's order: q scaled before q k^T.
  const a = selfAttention(rmsNorm(x, norm1) as tf.Tensor3D, proj, { heads, mask: 'causal', scale: 'query', rope, past });
  const h = tf.add(x, maybeDropout(a.y, drop)) as tf.Tensor3D;
  const m = swiglu(rmsNorm(h, norm2), gate, up, down, lin);
  return { y: tf.add(h, maybeDropout(m, drop)) as tf.Tensor3D, kv: a.kv };
}

/**
 * One pre-norm block: x + Attn(RMSNorm(x)), then + SwiGLU(RMSNorm(.)); Attn is nn's selfAttention, causal, RoPE'd,
 * with the KV cache `past`. x: [B, L, C] -> y: [B, L, C], kv as in nn's attention.
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
