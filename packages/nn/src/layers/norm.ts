import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from '../params';
import { type GroupNormSquares, groupNormalize } from './groupNormalize';

/** Affine parameters of a GroupNorm or LayerNorm: `name/gamma` [c] (ones) then `name/beta` [c] (zeros). */
export function createNormAffine(store: ParamStore, name: string, c: number): void {
  store.create(`${name}/gamma`, [c], { kind: 'ones' });
  store.create(`${name}/beta`, [c], { kind: 'zeros' });
}

/** GroupNorm's parameters (createNormAffine). */
export const createGroupNorm = createNormAffine;
/** LayerNorm's parameters (createNormAffine). */
export const createLayerNorm = createNormAffine;

/**
 * GroupNorm (Wu & He 2018), NHWC: x: [B, H, W, C] -> same; statistics per sample and group over (H, W, C/G),
 * biased variance, then * `name/gamma` + `name/beta`. opts.eps: 1e-6 by default (VQGAN's; FeatureNet uses 1e-5);
 * opts.squares: see groupNormalize (default 'square'). Throws when `groups` does not divide C.
 */
export function groupNorm(
  store: ParamStore,
  name: string,
  x: tf.Tensor4D,
  groups: number,
  opts: { eps?: number; squares?: GroupNormSquares } = {},
): tf.Tensor4D {
  const { eps = 1e-6, squares = 'square' } = opts;
  const [B, H, W, C] = x.shape;
  if (C % groups !== 0) throw new Error(`groupNorm ${name}: ${C} channels not divisible by ${groups} groups`);
  const normed = tf.reshape(groupNormalize(tf.reshape(x, [B, H * W, groups, C / groups]), eps, squares), [B, H, W, C]);
  return tf.add(tf.mul(normed, store.get(`${name}/gamma`)), store.get(`${name}/beta`));
}

/**
 * LayerNorm (Ba et al. 2016) over the last axis: x: [..., C] -> same, (x - mean) * rsqrt(var + eps) * `name/gamma` +
 * `name/beta`, biased variance, eps 1e-5 by default (PyTorch's). The variance is written out: squaredDifference's
 * gradient ignores broadcasting.
 */
export function layerNorm(store: ParamStore, name: string, x: tf.Tensor, eps = 1e-5): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const d = tf.sub(x, mean);
  const variance = tf.mean(tf.mul(d, d), -1, true);
  return tf.add(tf.mul(tf.mul(d, tf.rsqrt(tf.add(variance, eps))), store.get(`${name}/gamma`)), store.get(`${name}/beta`));
}

/**
 * RMSNorm (Zhang & Sennrich 2019, as in LLaMA / LlamaGen) over the last axis: x * rsqrt(mean(x^2) + eps) * weight.
 * x: [..., C], weight: [C] -> [..., C]; eps 1e-6 by default.
 */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps = 1e-6): tf.Tensor {
  const ms = tf.mean(tf.mul(x, x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight);
}

/** Rows scaled to unit L2 norm over the last axis: x / sqrt(sum(x^2) + 1e-12). x: [..., d] -> same. */
export function l2Normalize<T extends tf.Tensor>(x: T): T {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), -1, true), 1e-12)));
}
