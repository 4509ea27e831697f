import * as tf from '@tensorflow/tfjs';
import { linear, type ParamStore, type KVCache, rmsNorm } from '@factorgen/nn';
import type { Generator, GeneratorConfig } from './config';
import { block, blockTraining, createBlockParams, type DropoutCtx, maybeDropout, type Recompute } from './layers';

/**
 * Factorized head (FQGAN's FAR). At each position the backbone's h_t is decoded into K sub-tokens.
 * 'ar': a small causal transformer over the slots [proj(h_t), emb_0(c_0), ..., emb_{K-2}(c_{K-2})] (length K);
 *       slot k predicts c_k through sub-codebook k's own output layer, so c_k is conditioned on c_0..c_{k-1}.
 * 'parallel': K independent linear layers on h_t (sub-tokens independent given h_t).
 * Output layers start at zero (as in LlamaGen), so an untrained model predicts uniform distributions.
 */
export function createHeadParams(params: ParamStore, cfg: GeneratorConfig): void {
  const K = cfg.subCodebookSizes.length;
  if (cfg.headMode === 'parallel') {
    cfg.subCodebookSizes.forEach((V, k) => {
      params.create(`head/out${k}/w`, [cfg.width, V], { kind: 'zeros' });
      params.create(`head/out${k}/b`, [V], { kind: 'zeros' });
    });
    return;
  }
  const hw = cfg.headWidth;
  if (hw !== cfg.width) params.create('head/inProj', [cfg.width, hw], { kind: 'normal', std: 0.02 });
  for (let k = 0; k < K - 1; k++) params.create(`head/emb${k}`, [cfg.subCodebookSizes[k], hw], { kind: 'normal', std: 0.02 });
  // Learned slot embeddings instead of RoPE: K is tiny and fixed.
  params.create('head/slotPos', [K, hw], { kind: 'normal', std: 0.02 });
  for (let i = 0; i < cfg.headLayers; i++) createBlockParams(params, `head/block${i}`, hw, cfg.headMlpHidden, cfg.headLayers);
  params.create('head/normOut', [hw], { kind: 'ones' });
  cfg.subCodebookSizes.forEach((V, k) => {
    params.create(`head/out${k}/w`, [hw, V], { kind: 'zeros' });
    params.create(`head/out${k}/b`, [V], { kind: 'zeros' });
  });
}

/**
 * Inputs of AR-head slots start..start+L-1, with their slot embeddings added.
 * h: [N, width], used iff start = 0 (slot 0); sub: int32 [N, n], the sub-tokens feeding the remaining slots
 * (column i holds c_{s-1} for slot s = max(start, 1) + i), or null when only slot 0 is asked for.
 * Returns [N, L, headWidth].
 */
export function headSlots(gen: Generator, start: number, h: tf.Tensor2D | null, sub: tf.Tensor2D | null): tf.Tensor3D {
  const { cfg, params } = gen;
  const parts: tf.Tensor3D[] = [];
  if (start === 0) {
    if (!h) throw new Error('headSlots: slot 0 needs h');
    const x = cfg.headWidth !== cfg.width ? linear(h, params.get('head/inProj')) : h;
    parts.push(tf.expandDims(x, 1) as tf.Tensor3D);
  }
  if (sub) {
    const first = Math.max(start, 1);
    tf.unstack(sub, 1).forEach((c, i) => {
      parts.push(tf.expandDims(tf.gather(params.get(`head/emb${first + i - 1}`), c), 1) as tf.Tensor3D);
    });
  }
  const x = parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor3D);
  const L = x.shape[1];
  return tf.add(x, tf.slice(params.get('head/slotPos'), [start, 0], [L, -1])) as tf.Tensor3D;
}

/**
 * The AR head's transformer on slots start..start+L-1. x: [N, L, headWidth] from headSlots, cache: keys/values of
 * slots 0..start-1 (null when start = 0). Returns logits: L tensors, the i-th [N, V_{start+i}], and the extended cache.
 */
export function headForward(
  gen: Generator,
  x: tf.Tensor3D,
  start: number,
  cache: KVCache | null,
  drop: DropoutCtx,
): { logits: tf.Tensor2D[]; cache: KVCache } {
  const { cfg, params } = gen;
  const [N, L, hw] = x.shape;
  let y = maybeDropout(x, drop);
  const next: KVCache = [];
  for (let i = 0; i < cfg.headLayers; i++) {
    const out = block(params, `head/block${i}`, y, cfg.headHeads, null, cache ? cache[i] : null, drop);
    y = out.y;
    next.push(out.kv);
  }
  return { logits: slotLogits(gen, y, start), cache: next };
}

/** Final norm of the AR head. y: [N, L, headWidth] for slots start.. -> L tensors [N, headWidth], slot by slot. */
function slotHidden(gen: Generator, y: tf.Tensor3D): tf.Tensor2D[] {
  const [N, L, hw] = y.shape;
  const normed = rmsNorm(y, gen.params.get('head/normOut')) as tf.Tensor3D;
  // [N, L, hw] -> L x [N, hw] via a transpose so each slice is contiguous (strided slices are slow on cpu).
  return L === 1 ? [tf.reshape(normed, [N, hw]) as tf.Tensor2D] : (tf.unstack(tf.transpose(normed, [1, 0, 2])) as tf.Tensor2D[]);
}

/** Sub-codebook k's output layer. x: [N, d] (slot k's hidden state) -> logits [N, V_k]. */
export function headOutput(gen: Generator, k: number, x: tf.Tensor2D): tf.Tensor2D {
  return linear(x, gen.params.get(`head/out${k}/w`), gen.params.get(`head/out${k}/b`)) as tf.Tensor2D;
}

/** Final norm and each slot's output layer. y: [N, L, headWidth] for slots start.. -> L tensors, the i-th [N, V_{start+i}]. */
function slotLogits(gen: Generator, y: tf.Tensor3D, start: number): tf.Tensor2D[] {
  return slotHidden(gen, y).map((s, i) => headOutput(gen, start + i, s));
}

/** 'parallel' head: h: [N, width] -> K logits, the k-th [N, V_k]. */
export function parallelLogits(gen: Generator, h: tf.Tensor2D): tf.Tensor2D[] {
  return gen.cfg.subCodebookSizes.map(
    (_, k) => linear(h, gen.params.get(`head/out${k}/w`), gen.params.get(`head/out${k}/b`)) as tf.Tensor2D,
  );
}

/**
 * Teacher-forced head over N positions at once (N = B*T in training), up to the output layers. h: [N, width],
 * tokens: int32 [N, K] (the targets, whose first K-1 sub-tokens feed the AR slots) -> K tensors, the k-th [N, d]
 * feeding headOutput(gen, k, .) (d = headWidth; width for the parallel head, where all K are h). recompute: as in
 * backboneTeacherForced.
 */
export function headTeacherForcedHidden(gen: Generator, h: tf.Tensor2D, tokens: tf.Tensor2D, drop: DropoutCtx, recompute: Recompute = 'all'): tf.Tensor2D[] {
  const { cfg, params } = gen;
  const K = cfg.subCodebookSizes.length;
  if (cfg.headMode === 'parallel') return Array.from({ length: K }, () => h);
  const sub = K > 1 ? (tf.slice(tokens, [0, 0], [-1, K - 1]) as tf.Tensor2D) : null;
  // headForward(gen, slots, 0, null, drop), each block's activations kept or recomputed as `recompute` says.
  let y = maybeDropout(headSlots(gen, 0, h, sub), drop);
  for (let i = 0; i < cfg.headLayers; i++) y = blockTraining(params, `head/block${i}`, y, cfg.headHeads, null, drop, recompute);
  return slotHidden(gen, y);
}

/** headTeacherForcedHidden through the output layers: K logits, the k-th [N, V_k]. */
export function headTeacherForced(gen: Generator, h: tf.Tensor2D, tokens: tf.Tensor2D, drop: DropoutCtx, recompute: Recompute = 'all'): tf.Tensor2D[] {
  return headTeacherForcedHidden(gen, h, tokens, drop, recompute).map((x, k) => headOutput(gen, k, x));
}
