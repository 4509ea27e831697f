import * as tf from '@tensorflow/tfjs';
import { ParamStore, fanInUniform, linear } from '@factorgen/nn';
import { groupNormalize } from './groupNorm';

/**
 * Functional layers over a ParamStore: `createX(store, name, ...)` registers `name/...` parameters,
 * `x(store, name, input, ...)` applies them. All maps are NHWC.
 */

/** Conv kernel `name/w` [kh,kw,cin,cout] (PyTorch-default fan-in uniform) and bias `name/b` [cout] (zeros). */
export function createConv(store: ParamStore, name: string, cin: number, cout: number, k = 3): void {
  store.create(`${name}/w`, [k, k, cin, cout], fanInUniform(k * k * cin));
  store.create(`${name}/b`, [cout], { kind: 'zeros' });
}

/** x: [B,H,W,cin] -> [B,ceil(H/stride),ceil(W/stride),cout], 'same' padding (stride 2 pads bottom/right like VQGAN). */
export function conv2d(store: ParamStore, name: string, x: tf.Tensor4D, stride = 1): tf.Tensor4D {
  const y = tf.conv2d(x, store.get(`${name}/w`) as tf.Tensor4D, stride, 'same');
  return tf.add(y, store.get(`${name}/b`));
}

/** Dense / 1x1-conv weights `name/w` [cin,cout] and `name/b` [cout]. */
export function createLinear(store: ParamStore, name: string, cin: number, cout: number): void {
  store.create(`${name}/w`, [cin, cout], fanInUniform(cin));
  store.create(`${name}/b`, [cout], { kind: 'zeros' });
}

/** 1x1 conv / dense over the last axis: x: [..., cin] -> [..., cout] (2-D matMul inside, see shared linear). */
export function dense<T extends tf.Tensor>(store: ParamStore, name: string, x: T): T {
  return linear(x, store.get(`${name}/w`), store.get(`${name}/b`)) as T;
}

/** GroupNorm affine parameters `name/gamma` (ones), `name/beta` (zeros), both [C]. */
export function createGroupNorm(store: ParamStore, name: string, c: number): void {
  store.create(`${name}/gamma`, [c], { kind: 'ones' });
  store.create(`${name}/beta`, [c], { kind: 'zeros' });
}

/**
 * GroupNorm: x: [B,H,W,C] -> same; statistics per sample and group over (H, W, C/G), eps 1e-6 (VQGAN).
 * `groups` must divide C.
 */
export function groupNorm(store: ParamStore, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  if (C % groups !== 0) throw new Error(`groupNorm ${name}: ${C} channels not divisible by ${groups} groups`);
  const normed = tf.reshape(groupNormalize(tf.reshape(x, [B, H * W, groups, C / groups]), 1e-6), [B, H, W, C]);
  return tf.add(tf.mul(normed, store.get(`${name}/gamma`)), store.get(`${name}/beta`));
}

/** swish / SiLU: x * sigmoid(x), any shape. */
export function swish<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x));
}

/** ResBlock params: norm1, conv1 (cin->cout), norm2, conv2 (cout->cout), and a 1x1 `skip` when cin != cout. */
export function createResBlock(store: ParamStore, name: string, cin: number, cout: number): void {
  createGroupNorm(store, `${name}/norm1`, cin);
  createConv(store, `${name}/conv1`, cin, cout);
  createGroupNorm(store, `${name}/norm2`, cout);
  createConv(store, `${name}/conv2`, cout, cout);
  if (cin !== cout) createLinear(store, `${name}/skip`, cin, cout);
}

/** x: [B,H,W,cin] -> [B,H,W,cout]: x' + conv2(swish(GN(conv1(swish(GN(x)))))), x' = x or its 1x1 projection. */
export function resBlock(store: ParamStore, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  let h = conv2d(store, `${name}/conv1`, swish(groupNorm(store, `${name}/norm1`, x, groups)));
  h = conv2d(store, `${name}/conv2`, swish(groupNorm(store, `${name}/norm2`, h, groups)));
  const skip = store.has(`${name}/skip/w`) ? dense(store, `${name}/skip`, x) : x;
  return tf.add(skip, h);
}

/** Attention params: norm, q, k, v, out (all C->C). */
export function createAttnBlock(store: ParamStore, name: string, c: number): void {
  createGroupNorm(store, `${name}/norm`, c);
  for (const p of ['q', 'k', 'v', 'out']) createLinear(store, `${name}/${p}`, c, c);
}

/**
 * Single-head self-attention over the H*W positions, residual: x: [B,H,W,C] -> same.
 * Batched 3-D x 3-D matMuls (the batched-matMul gradient trap is only for a 2-D weight). On wasm they run on the
 * registered BatchMatMul's SIMD128 kernel, bit-identical to the per-sample 2-D products this block used before
 * (test/tokenizer/layers.test.ts) and ~4x faster with their gradients at B 64, 7x7, C 48: per-sample slices cost a
 * [B*H*W, C] zero-padded copy and add each in the backward pass.
 */
export function attnBlock(store: ParamStore, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const h = tf.reshape(groupNorm(store, `${name}/norm`, x, groups), [B, H * W, C]);
  const q = dense(store, `${name}/q`, h);
  const k = dense(store, `${name}/k`, h);
  const v = dense(store, `${name}/v`, h);
  const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(C)));
  const o = dense(store, `${name}/out`, tf.matMul(att, v));
  return tf.add(x, tf.reshape(o, [B, H, W, C]));
}

/** Stride-2 3x3 conv: [B,H,W,C] -> [B,H/2,W/2,C]. */
export function createDownsample(store: ParamStore, name: string, c: number): void {
  createConv(store, `${name}/conv`, c, c);
}
export function downsample(store: ParamStore, name: string, x: tf.Tensor4D): tf.Tensor4D {
  return conv2d(store, `${name}/conv`, x, 2);
}

/** Nearest x2 then 3x3 conv: [B,H,W,C] -> [B,2H,2W,C]. */
export function createUpsample(store: ParamStore, name: string, c: number): void {
  createConv(store, `${name}/conv`, c, c);
}
export function upsample(store: ParamStore, name: string, x: tf.Tensor4D): tf.Tensor4D {
  const [, H, W] = x.shape;
  return conv2d(store, `${name}/conv`, tf.image.resizeNearestNeighbor(x, [2 * H, 2 * W]));
}
