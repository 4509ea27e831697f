import * as tf from '@tensorflow/tfjs';
import { linear, type ParamStore, backboneRope, type KVCache, rmsNorm, ropeSlice } from '@factorgen/nn';
import { type Generator, type GeneratorConfig, seqLen } from './config';
import { block, blockTraining, createBlockParams, type DropoutCtx, maybeDropout, type Recompute } from './layers';

/** Dimension of each sub-token embedding; the K of them are concatenated and projected to width. */
export function subEmbedDim(cfg: GeneratorConfig): number {
  return Math.floor(cfg.width / cfg.subCodebookSizes.length);
}

/** Creates the backbone's parameters under "gpt/". */
export function createBackboneParams(params: ParamStore, cfg: GeneratorConfig): void {
  const e = subEmbedDim(cfg);
  const K = cfg.subCodebookSizes.length;
  cfg.subCodebookSizes.forEach((V, k) => params.create(`gpt/tok${k}`, [V, e], { kind: 'normal', std: 0.02 }));
  params.create('gpt/inProj', [K * e, cfg.width], { kind: 'normal', std: 0.02 });
  params.create('gpt/cls', [cfg.numClasses + 1, cfg.width], { kind: 'normal', std: 0.02 });
  for (let i = 0; i < cfg.depth; i++) createBlockParams(params, `gpt/block${i}`, cfg.width, cfg.mlpHidden, cfg.depth);
  params.create('gpt/normOut', [cfg.width], { kind: 'ones' });
}

/** Embeds whole tokens: concat of the K sub-token embeddings, projected. tokens: int32 [R, L, K] -> [R, L, width]. */
export function embedTokens(gen: Generator, tokens: tf.Tensor3D): tf.Tensor3D {
  const K = gen.cfg.subCodebookSizes.length;
  const subs = tf.unstack(tokens, 2); // K x [R, L]
  const parts = subs.map((s, k) => tf.gather(gen.params.get(`gpt/tok${k}`), s)); // K x [R, L, e]
  return linear(K === 1 ? parts[0] : tf.concat(parts, 2), gen.params.get('gpt/inProj')) as tf.Tensor3D;
}

/** The class token. labels: int32 [R] in [0, numClasses] (numClasses = null class) -> [R, 1, width]. */
export function embedClass(gen: Generator, labels: tf.Tensor1D): tf.Tensor3D {
  return tf.expandDims(tf.gather(gen.params.get('gpt/cls'), labels), 1) as tf.Tensor3D;
}

/**
 * The backbone on L new input positions start..start+L-1 of the sequence [class, x_0, ..., x_{T-2}].
 * x: [R, L, width] (embedded inputs), cache: the keys/values of positions 0..start-1 (null when start = 0).
 * Returns h: [R, L, width] (after the final RMSNorm; h at position t predicts x_t) and the cache extended to
 * start+L positions (new tensors; the caller disposes the old cache).
 */
export function backboneForward(
  gen: Generator,
  x: tf.Tensor3D,
  start: number,
  cache: KVCache | null,
  drop: DropoutCtx,
): { h: tf.Tensor3D; cache: KVCache } {
  const { cfg, params } = gen;
  const L = x.shape[1];
  const rope = ropeSlice(backboneRope(cfg.rope, cfg.gridH, cfg.gridW, cfg.width / cfg.heads, 10000, cfg.classRope), start, L);
  let y = maybeDropout(x, drop);
  const next: KVCache = [];
  for (let i = 0; i < cfg.depth; i++) {
    const out = block(params, `gpt/block${i}`, y, cfg.heads, rope, cache ? cache[i] : null, drop);
    y = out.y;
    next.push(out.kv);
  }
  return { h: rmsNorm(y, params.get('gpt/normOut')) as tf.Tensor3D, cache: next };
}

/**
 * Teacher-forced backbone over whole images. tokens: int32 [B, T, K], labels: int32 [B] -> h: [B, T, width],
 * where h[:, t] has seen the class and x_0..x_{t-1} and predicts x_t. recompute: which of each block's activations
 * the tape keeps and which it recomputes in the backward pass (see Recompute; the same values and gradients, bit for bit).
 */
export function backboneTeacherForced(gen: Generator, tokens: tf.Tensor3D, labels: tf.Tensor1D, drop: DropoutCtx, recompute: Recompute = 'all'): tf.Tensor3D {
  const T = seqLen(gen.cfg);
  const [B] = tokens.shape;
  const parts = [embedClass(gen, labels)];
  if (T > 1) parts.push(embedTokens(gen, tf.slice(tokens, [0, 0, 0], [B, T - 1, -1])));
  const x = parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor3D);
  // The same computation as backboneForward(gen, x, 0, null, drop).h, each block's activations kept or recomputed in
  // the backward pass as `recompute` says.
  const { cfg, params } = gen;
  const rope = ropeSlice(backboneRope(cfg.rope, cfg.gridH, cfg.gridW, cfg.width / cfg.heads, 10000, cfg.classRope), 0, T);
  let y = maybeDropout(x, drop);
  for (let i = 0; i < cfg.depth; i++) y = blockTraining(params, `gpt/block${i}`, y, cfg.heads, rope, drop, recompute);
  return rmsNorm(y, params.get('gpt/normOut')) as tf.Tensor3D;
}
