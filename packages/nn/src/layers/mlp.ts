import * as tf from '@tensorflow/tfjs';
import { gelu, swish } from './act';
import { linear, type Projection } from './linear';

/**
 * Gated MLP (Shazeer 2020, "GLU Variants Improve Transformer"): down(act(gate(x)) * up(x)), act = SiLU (SwiGLU, as
 * LLaMA / LlamaGen) or tanh-GELU (GeGLU, as UniTok's GeGluMlp). x: [..., C] -> [..., C'] as the projections say.
 * The projections run in the order gate, up, down (gradient checkpointing that keeps products relies on it).
 */
export function gatedMlp(x: tf.Tensor, p: { gate: Projection; up: Projection; down: Projection }, act: 'silu' | 'gelu'): tf.Tensor {
  const a = act === 'silu' ? swish(p.gate(x)) : gelu(p.gate(x));
  return p.down(tf.mul(a, p.up(x)));
}

/**
 * SwiGLU on bare weights: (silu(x Wg) * (x Wu)) Wd. x: [..., C], wGate, wUp: [C, H], wDown: [H, C] -> [..., C].
 * Separate gate/up weights rather than one fused matMul + split: split is a slow strided copy on the cpu backend.
 * lin: how each product is computed (default `linear`; gradient checkpointing passes its own).
 */
export function swiglu(x: tf.Tensor, wGate: tf.Tensor, wUp: tf.Tensor, wDown: tf.Tensor, lin: (x: tf.Tensor, w: tf.Tensor) => tf.Tensor = linear): tf.Tensor {
  return gatedMlp(x, { gate: (h) => lin(h, wGate), up: (h) => lin(h, wUp), down: (h) => lin(h, wDown) }, 'silu');
}

/**
 * Two-layer MLP: proj(act(fc(x))), act = tanh-GELU (GPT-2 / ViT blocks, FQGAN's alignment head), SiLU or ReLU.
 * x: [..., C] -> [..., C'] as the projections say.
 */
export function mlp(x: tf.Tensor, p: { fc: Projection; proj: Projection }, act: 'gelu' | 'silu' | 'relu'): tf.Tensor {
  const h = p.fc(x);
  return p.proj(act === 'gelu' ? gelu(h) : act === 'silu' ? swish(h) : tf.relu(h));
}
