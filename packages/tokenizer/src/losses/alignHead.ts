import * as tf from '@tensorflow/tfjs';
import { ParamStore, stopGradient } from '@factorgen/nn';
import type { AlignTarget, TokenizerConfig } from '../config/schema';
import { l2Normalize } from '../quant/codebook';
import { createLinear, dense } from '../arch/layers';

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

function createLayerNorm(store: ParamStore, name: string, c: number): void {
  store.create(`${name}/gamma`, [c], { kind: 'ones' });
  store.create(`${name}/beta`, [c], { kind: 'zeros' });
}

/** LayerNorm over the last axis, eps 1e-5 by default (PyTorch's). Variance written out: squaredDifference's gradient ignores broadcasting. */
export function layerNorm(store: ParamStore, name: string, x: tf.Tensor, eps = 1e-5): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const d = tf.sub(x, mean);
  const variance = tf.mean(tf.mul(d, d), -1, true);
  return tf.add(tf.mul(tf.mul(d, tf.rsqrt(tf.add(variance, eps))), store.get(`${name}/gamma`)), store.get(`${name}/beta`));
}

/** GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function gelu<T extends tf.Tensor>(x: T): T {
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as T;
}

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

/** Multi-head self-attention over tokens. x: [B,L,W] -> [B,L,W] (before the residual). */
function selfAttention(store: ParamStore, name: string, x: tf.Tensor3D, heads: number): tf.Tensor3D {
  const [B, L, W] = x.shape;
  const dh = W / heads;
  const split = (t: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(t, [B, L, heads, dh]), [0, 2, 1, 3]), [B * heads, L, dh]) as tf.Tensor3D;
  const q = split(dense(store, `${name}/q`, x));
  const k = split(dense(store, `${name}/k`, x));
  const v = split(dense(store, `${name}/v`, x));
  // Both operands batched (3-D x 3-D): the batched-matMul gradient trap is only for a 2-D weight.
  const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)));
  const o = tf.reshape(tf.transpose(tf.reshape(tf.matMul(att, v), [B, heads, L, dh]), [0, 2, 1, 3]), [B, L, W]);
  return dense(store, `${name}/out`, o) as tf.Tensor3D;
}

/** Target i's head on its sub-codebook's codes [B,h,w,d] -> the class token's output [B, teacherDim]. */
export function alignTargetPredict(store: ParamStore, cfg: TokenizerConfig, i: number, code: tf.Tensor4D): tf.Tensor2D {
  const t = targetOf(cfg, i);
  const p = alignTargetPrefix(i);
  const [B, h, w] = code.shape;
  const W = t.teacherDim;
  let x = tf.reshape(dense(store, `${p}/up2`, tf.relu(dense(store, `${p}/up1`, code))), [B, h * w, W]) as tf.Tensor3D;
  const cls = tf.tile(tf.reshape(store.get(`${p}/cls`), [1, 1, W]), [B, 1, 1]);
  x = tf.add(tf.concat([cls, x], 1), store.get(`${p}/pos`)) as tf.Tensor3D;
  x = layerNorm(store, `${p}/ln_pre`, x) as tf.Tensor3D;
  for (let l = 0; l < t.layers; l++) {
    const b = `${p}/block${l}`;
    x = tf.add(x, selfAttention(store, b, layerNorm(store, `${b}/ln1`, x) as tf.Tensor3D, t.heads));
    x = tf.add(x, dense(store, `${b}/proj`, gelu(dense(store, `${b}/fc`, layerNorm(store, `${b}/ln2`, x)))));
  }
  x = layerNorm(store, `${p}/ln_post`, x) as tf.Tensor3D;
  return tf.reshape(tf.slice(x, [0, 0, 0], [B, 1, W]), [B, W]) as tf.Tensor2D;
}

/**
 * FQGAN's alignment loss (CLIPVisionTower.forward in clip_encoder.py): with p, t the L2-normalized prediction and
 * (frozen) teacher embedding rows, M = exp(p t^T) (temperature 1), loss = -mean_i log(M_ii / sum_j M_ij).
 * One-directional: each prediction picks its own image's teacher embedding among the batch's; the teacher side gets
 * no gradient. pred, teacher: [B,E] -> scalar (unweighted).
 */
export function fqganInfoNCE(pred: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  const B = pred.shape[0];
  if (teacher.shape[0] !== B || teacher.shape[1] !== pred.shape[1]) {
    throw new Error(`fqganInfoNCE: prediction [${pred.shape}] and teacher [${teacher.shape}] shapes differ`);
  }
  const m = tf.exp(tf.matMul(l2Normalize(pred), l2Normalize(stopGradient(teacher)), false, true));
  const diag = tf.sum(tf.mul(m, tf.eye(B)), 1);
  return tf.neg(tf.mean(tf.log(tf.div(diag, tf.sum(m, 1))))) as tf.Scalar;
}

/** weight_i * fqganInfoNCE(head_i(code), teacherEmbedding) for target i. code: [B,h,w,d], teacherEmbedding: [B,teacherDim]. */
export function alignTargetLoss(store: ParamStore, cfg: TokenizerConfig, i: number, code: tf.Tensor4D, teacherEmbedding: tf.Tensor2D): tf.Scalar {
  const t = targetOf(cfg, i);
  if (teacherEmbedding.shape[1] !== t.teacherDim) {
    throw new Error(`alignTargetLoss: teacher ${t.teacher} embedding dim ${teacherEmbedding.shape[1]} != target ${i} teacherDim ${t.teacherDim}`);
  }
  return tf.mul(fqganInfoNCE(alignTargetPredict(store, cfg, i, code), teacherEmbedding), t.weight);
}
