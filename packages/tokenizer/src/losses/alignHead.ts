import * as tf from '@tensorflow/tfjs';
import { createLayerNorm, createLinear, denseOf, mlp, infoNCE, layerNorm, type ParamStore, selfAttention } from '@factorgen/nn';
import type { AlignTarget, TokenizerConfig } from '../config/schema';

/**
 * FQGAN's semantic feature-prediction head (FeatPredHead in vq_model_dual.py) and its alignment loss, one per
 * alignment target (FQGAN-Triple aligns two sub-codebooks to two teachers). Parameters of target i live under
 * 'align/t{i}/'. For sub-codebook codes [B,h,w,d]:
 *   upscale MLP d -> W -> W (ReLU between), a learned class token prepended, learned positional embeddings over the
 *   1 + h*w tokens, LayerNorm, `layers` pre-LN transformer blocks (multi-head self-attention, GELU MLP of ratio 4),
 *   LayerNorm; the class token's output [B,W] is the prediction, W = the teacher's embedding width.
 * GELU is the tanh approximation (tfjs has no erf GELU); FQGAN's is nn.GELU (erf). They differ by < 1e-3.
 */
export const alignTargetPrefix = (i: number): string => `align/t${i}`;

/** Registers target i's head. Needs cfg.alignTargets[i]. */
export function createAlignTargetHead(store: ParamStore, cfg: TokenizerConfig, i: number): void {
  const t = targetOf(cfg, i);
  const p = alignTargetPrefix(i);
  const d = cfg.quantizer.subCodebooks[t.subCodebook].dim;
  const W = t.teacherDim;
  const grid = cfg.imageSize / 2 ** (cfg.channelMult.length - 1);
  createLinear(store, `${p}/up1`, d, W);
  createLinear(store, `${p}/up2`, W, W);
  // FQGAN: scale * randn with scale = W^-0.5.
  store.create(`${p}/cls`, [1, W], { kind: 'normal', std: W ** -0.5 });
  store.create(`${p}/pos`, [1 + grid * grid, W], { kind: 'normal', std: W ** -0.5 });
  createLayerNorm(store, `${p}/ln_pre`, W);
  for (let l = 0; l < t.layers; l++) {
    const b = `${p}/block${l}`;
    createLayerNorm(store, `${b}/ln1`, W);
    for (const n of ['q', 'k', 'v', 'out']) createLinear(store, `${b}/${n}`, W, W);
    createLayerNorm(store, `${b}/ln2`, W);
    createLinear(store, `${b}/fc`, W, 4 * W);
    createLinear(store, `${b}/proj`, 4 * W, W);
  }
  createLayerNorm(store, `${p}/ln_post`, W);
}

function targetOf(cfg: TokenizerConfig, i: number): AlignTarget {
  const t = cfg.alignTargets[i];
  if (!t) throw new Error(`align target ${i}: config has ${cfg.alignTargets.length} targets`);
  return t;
}

/** Target i's head on its sub-codebook's codes [B,h,w,d] -> the class token's output [B, teacherDim]. */
export function alignTargetPredict(store: ParamStore, cfg: TokenizerConfig, i: number, code: tf.Tensor4D): tf.Tensor2D {
  const t = targetOf(cfg, i);
  const p = alignTargetPrefix(i);
  const [B, h, w] = code.shape;
  const W = t.teacherDim;
  let x = tf.reshape(mlp(code, { fc: denseOf(store, `${p}/up1`), proj: denseOf(store, `${p}/up2`) }, 'relu'), [B, h * w, W]) as tf.Tensor3D;
  const cls = tf.tile(tf.reshape(store.get(`${p}/cls`), [1, 1, W]), [B, 1, 1]);
  x = tf.add(tf.concat([cls, x], 1), store.get(`${p}/pos`)) as tf.Tensor3D;
  x = layerNorm(store, `${p}/ln_pre`, x) as tf.Tensor3D;
  for (let l = 0; l < t.layers; l++) {
    const b = `${p}/block${l}`;
    const proj = { q: denseOf(store, `${b}/q`), k: denseOf(store, `${b}/k`), v: denseOf(store, `${b}/v`), out: denseOf(store, `${b}/out`) };
    x = tf.add(x, selfAttention(layerNorm(store, `${b}/ln1`, x) as tf.Tensor3D, proj, { heads: t.heads, scale: 'scores' }).y);
    x = tf.add(x, mlp(layerNorm(store, `${b}/ln2`, x), { fc: denseOf(store, `${b}/fc`), proj: denseOf(store, `${b}/proj`) }, 'gelu'));
  }
  x = layerNorm(store, `${p}/ln_post`, x) as tf.Tensor3D;
  return tf.reshape(tf.slice(x, [0, 0, 0], [B, 1, W]), [B, W]) as tf.Tensor2D;
}

/**
 * FQGAN's alignment loss (CLIPVisionTower.forward in clip_encoder.py; nn's infoNCE, 'predToTarget'): with p, t the L2-normalized prediction and
 * (frozen) teacher embedding rows, M = exp(p t^T) (temperature 1), loss = -mean_i log(M_ii / sum_j M_ij).
 * One-directional: each prediction picks its own image's teacher embedding among the batch's; the teacher side gets
 * no gradient. pred, teacher: [B,E] -> scalar (unweighted).
 */
export function fqganInfoNCE(pred: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  return infoNCE(pred, teacher, 1, 'predToTarget');
}

/** weight_i * fqganInfoNCE(head_i(code), teacherEmbedding) for target i. code: [B,h,w,d], teacherEmbedding: [B,teacherDim]. */
export function alignTargetLoss(store: ParamStore, cfg: TokenizerConfig, i: number, code: tf.Tensor4D, teacherEmbedding: tf.Tensor2D): tf.Scalar {
  const t = targetOf(cfg, i);
  if (teacherEmbedding.shape[1] !== t.teacherDim) {
    throw new Error(`alignTargetLoss: teacher ${t.teacher} embedding dim ${teacherEmbedding.shape[1]} != target ${i} teacherDim ${t.teacherDim}`);
  }
  return tf.mul(fqganInfoNCE(alignTargetPredict(store, cfg, i, code), teacherEmbedding), t.weight);
}
