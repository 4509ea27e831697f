import * as tf from '@tensorflow/tfjs';
import { conv2d, createConv, createGroupNorm, createLinear, dense, denseOf, groupNorm, type ParamStore, selfAttention, swish } from '@factorgen/nn';

/**
 * VQGAN's blocks over a ParamStore (taming-transformers' ResnetBlock, AttnBlock, Downsample, Upsample), built from
 * @factorgen/nn's layers: `createX(store, name, ...)` registers `name/...` parameters, `x(store, name, input, ...)`
 * applies them. All maps are NHWC.
 */

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
 * Single-head self-attention over the H*W positions, residual: x: [B,H,W,C] -> same; scores scaled after q k^T
 * (VQGAN). nn's attention keeps one head as a reshape (no transposes): its [B,1,HW,C] products are flattened by the
 * registered BatchMatMul to the batched 3-D ones this block has always run (on wasm its SIMD128 kernel), bit-identical
 * to per-sample 2-D products (test/tokenizer/fastPaths.test.ts) and ~4x faster with their gradients at B 64, 7x7, C 48.
 */
export function attnBlock(store: ParamStore, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const h = tf.reshape(groupNorm(store, `${name}/norm`, x, groups), [B, H * W, C]) as tf.Tensor3D;
  const proj = { q: denseOf(store, `${name}/q`), k: denseOf(store, `${name}/k`), v: denseOf(store, `${name}/v`), out: denseOf(store, `${name}/out`) };
  const { y } = selfAttention(h, proj, { heads: 1, scale: 'scores' });
  return tf.add(x, tf.reshape(y, [B, H, W, C]));
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
