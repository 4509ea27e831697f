import * as tf from '@tensorflow/tfjs';
import { attention, createLayerNorm, createLinear, dense, denseOf, gatedMlp, layerNorm, type ParamStore } from '@factorgen/nn';

/**
 * UniTok's AttnProjection (the quant_proj / post_quant_proj around its multi-codebook quantizer), for token maps
 * [B,h,w,in] -> [B,h,w,out], parameters under `name/`:
 *   y = proj(LN3(x)) + Attention(LN1(x));  y = y + GeGLU-MLP(LN2(y))  (MLP ratio 2, its own LN, eps 1e-6)
 * Attention: heads = max(in,out)/min(in,out); q, k, v from one bias-free matrix plus q and v biases (no k bias);
 * every position attends to every position (`causal` false: UniTok's PlainAttention since commit b015f87) or to
 * itself and the positions before it in raster order (`causal` true: UniTok's first release, its CausalAttention);
 * for in > out the heads (each of width out) are averaged, for in < out they are concatenated (heads x in = out);
 * then a linear `out -> out`.
 * in and out must divide one another (UniTok asserts the same).
 */
export function attnProjectionHeads(inDim: number, outDim: number): number {
  if (inDim % outDim !== 0 && outDim % inDim !== 0) throw new Error(`attnProjection: ${inDim} and ${outDim} do not divide one another`);
  return Math.max(inDim, outDim) / Math.min(inDim, outDim);
}

export function createAttnProjection(store: ParamStore, name: string, inDim: number, outDim: number): void {
  attnProjectionHeads(inDim, outDim);
  const wide = Math.max(inDim, outDim);
  createLayerNorm(store, `${name}/norm1`, inDim);
  createLayerNorm(store, `${name}/norm3`, inDim);
  createLayerNorm(store, `${name}/norm2`, outDim);
  createLinear(store, `${name}/qkv`, inDim, 3 * wide); // its bias is used for q and v only (UniTok: zero k bias)
  createLinear(store, `${name}/attn_proj`, outDim, outDim);
  createLinear(store, `${name}/proj`, inDim, outDim);
  createLayerNorm(store, `${name}/mlp/norm`, outDim);
  createLinear(store, `${name}/mlp/w0`, outDim, 2 * outDim);
  createLinear(store, `${name}/mlp/w1`, outDim, 2 * outDim);
  createLinear(store, `${name}/mlp/w2`, 2 * outDim, outDim);
}

/** x: [B,h,w,in] -> [B,h,w,out] (see createAttnProjection); `causal` as the config's attnProjCausal says. */
export function attnProjection(store: ParamStore, name: string, x: tf.Tensor4D, outDim: number, causal: boolean): tf.Tensor4D {
  const [B, h, w, inDim] = x.shape;
  const N = h * w;
  const heads = attnProjectionHeads(inDim, outDim);
  const wide = Math.max(inDim, outDim);
  const seq = tf.reshape(x, [B, N, inDim]);
  // Attention branch
  const a = layerNorm(store, `${name}/norm1`, seq, 1e-5);
  const wq = tf.matMul(tf.reshape(a, [B * N, inDim]), store.get(`${name}/qkv/w`));
  const bias = store.get(`${name}/qkv/b`);
  const kMask = tf.concat([tf.ones([wide]), tf.zeros([wide]), tf.ones([wide])]);
  const qkv = tf.reshape(tf.add(wq, tf.mul(bias, kMask)), [B, N, 3 * wide]);
  const part = (i: number) => tf.slice(qkv, [0, 0, i * wide], [B, N, wide]) as tf.Tensor3D;
  // Scores scaled after q k^T; for in > out the heads (each of width out) are averaged, else concatenated.
  const { y: merged } = attention(part(0), part(1), part(2), { heads, mask: causal ? 'causal' : 'none', scale: 'scores', merge: inDim > outDim ? 'mean' : 'concat' });
  const attnOut = dense(store, `${name}/attn_proj`, merged);
  // Linear skip branch
  let y = tf.add(dense(store, `${name}/proj`, layerNorm(store, `${name}/norm3`, seq, 1e-5)), attnOut);
  // GeGLU MLP (UniTok's GeGluMlp normalizes its input again)
  const m = layerNorm(store, `${name}/mlp/norm`, layerNorm(store, `${name}/norm2`, y, 1e-5), 1e-6);
  y = tf.add(y, gatedMlp(m, { gate: denseOf(store, `${name}/mlp/w0`), up: denseOf(store, `${name}/mlp/w1`), down: denseOf(store, `${name}/mlp/w2`) }, 'gelu'));
  return tf.reshape(y, [B, h, w, outDim]) as tf.Tensor4D;
}
