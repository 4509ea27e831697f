import * as tf from '@tensorflow/tfjs';
import { linearCrossEntropy } from '@factorgen/tfjs-ext';
import { ParamStore, Rng } from '@factorgen/nn';
import { currentGeneratorConfig, type Generator, type GeneratorConfig, type StoredGeneratorConfig, seqLen } from './config';
import { backboneTeacherForced, createBackboneParams } from './gpt';
import { createHeadParams, headOutput, headTeacherForcedHidden } from './head';
import type { DropoutCtx, Recompute } from './layers';

export type { Generator } from './config';

/**
 * Builds a generator with parameters drawn from Rng(seed) (same numbers on every backend). Validates cfg.
 * Parameter names live under 'gpt/' (backbone) and 'head/'; tf variable names are process-global, so dispose
 * gen.params before creating another generator in the same process.
 */
export function createGenerator(stored: StoredGeneratorConfig, seed: string | number, budget?: { shapes: Map<string, { shape: number[]; dtype: string }>; where: string }): Generator {
  const cfg = currentGeneratorConfig(stored);
  // budget: built to receive a checkpoint, it may not grow past what the checkpoint holds (see ParamStore).
  const params = new ParamStore(new Rng(`${seed}`).derive('generator'), budget);
  try {
    createBackboneParams(params, cfg);
    createHeadParams(params, cfg);
    params.assertMatches();
  } catch (e) {
    params.dispose();
    throw e;
  }
  return { cfg, params };
}

/**
 * training: enables class-label dropout and dropout, both drawn from `rng` (required when either rate is > 0).
 * recompute: gradient checkpointing of the backbone's and the head's blocks (see Recompute); the values and
 * gradients are the same bit for bit in every mode, only memory and time differ. Default: recomputeByDefault.
 */
export type LossOptions = { training: boolean; rng?: Rng; recompute?: Recompute };

/** Mean of the K sub-token cross-entropies, and each one (averaged over B*T) and each accuracy (argmax = target). */
export type GeneratorLoss = { loss: tf.Scalar; subLosses: tf.Scalar[]; subAccuracy: tf.Scalar[] };

/**
 * Replaces each label by the null class (numClasses) with probability p, one rng.next() per label in order.
 * labels: [B] -> new [B].
 */
export function dropClassLabels(labels: Int32Array, numClasses: number, p: number, rng: Rng): Int32Array {
  const out = Int32Array.from(labels);
  if (p <= 0) return out;
  for (let i = 0; i < out.length; i++) if (rng.next() < p) out[i] = numClasses;
  return out;
}

/**
 * Bytes of the projection outputs 'keepProducts' keeps on the tape for a training step at `batch`: per position and
 * backbone block q, k, v, out and down ([width] each) and gate, up ([mlpHidden] each), float32; the AR head's blocks
 * the same at K slots per position.
 */
export function keptProductBytes(cfg: GeneratorConfig, batch: number): number {
  const positions = batch * seqLen(cfg);
  const perBlock = (width: number, hidden: number) => 4 * (5 * width + 2 * hidden);
  const head = cfg.headMode === 'ar' ? cfg.headLayers * cfg.subCodebookSizes.length * perBlock(cfg.headWidth, cfg.headMlpHidden) : 0;
  return positions * (cfg.depth * perBlock(cfg.width, cfg.mlpHidden) + head);
}

/**
 * Kept products above this go to 'all' (the wasm32 heap is a hard 4 GB and never shrinks; a step also needs the
 * weights, the optimizer state, one block's activations and the gradients).
 */
export const KEEP_PRODUCTS_MAX_BYTES = 768 * 2 ** 20;

/**
 * The training forward's gradient checkpointing when LossOptions.recompute is not given: 'keepProducts' (the tape keeps
 * the projections' outputs; measured on wasm, width 256 x 6, batch 64: 1.22x the tokens per CPU-second of 'all' at
 * +280 MiB peak RSS) unless those outputs would exceed KEEP_PRODUCTS_MAX_BYTES, then 'all'.
 */
export function recomputeByDefault(cfg: GeneratorConfig, batch: number): Recompute {
  return keptProductBytes(cfg, batch) <= KEEP_PRODUCTS_MAX_BYTES ? 'keepProducts' : 'all';
}

function checkInputs(cfg: GeneratorConfig, tokens: tf.Tensor3D, labels: Int32Array): void {
  const [B, T, K] = tokens.shape;
  if (tokens.rank !== 3 || T !== seqLen(cfg) || K !== cfg.subCodebookSizes.length || tokens.dtype !== 'int32') {
    throw new Error(
      `generator: tokens must be int32 [B, ${seqLen(cfg)}, ${cfg.subCodebookSizes.length}] (got ${tokens.dtype} [${tokens.shape}])`,
    );
  }
  if (labels.length !== B) throw new Error(`generator: ${labels.length} labels for a batch of ${B}`);
  for (const l of labels) {
    if (!(l >= 0 && l <= cfg.numClasses)) throw new Error(`generator: label ${l} outside [0, ${cfg.numClasses}]`);
  }
}

/**
 * Teacher-forced hidden states for whole images (the training forward; the backbone and the head see every position
 * at once): K tensors, the k-th [B*T, d] (rows in (b, t) order) feeding sub-codebook k's output layer
 * `head/out{k}` (d = headWidth for the AR head, width for the parallel head).
 * tokens: int32 [B, T, K], labels: [B] in [0, numClasses]. Applies class-label dropout and dropout only when
 * opts.training. Labels are host ints (label dropout and the range check happen on the host; a tensor would need a
 * read back, which stalls a GPU).
 */
export function generatorHidden(gen: Generator, tokens: tf.Tensor3D, labels: Int32Array, opts: LossOptions): tf.Tensor2D[] {
  const { cfg } = gen;
  checkInputs(cfg, tokens, labels);
  const needRng = opts.training && (cfg.dropout > 0 || cfg.classDropout > 0);
  if (needRng && !opts.rng) throw new Error('generator: training with dropout needs opts.rng');
  const rng = opts.rng as Rng;
  const usedLabels = opts.training ? dropClassLabels(labels, cfg.numClasses, cfg.classDropout, rng) : labels;
  const drop: DropoutCtx = opts.training && cfg.dropout > 0 ? { rate: cfg.dropout, rng } : null;
  return tf.tidy(() => {
    const [B, T, K] = tokens.shape;
    const recompute = opts.recompute ?? recomputeByDefault(cfg, B);
    const h = backboneTeacherForced(gen, tokens, tf.tensor1d(usedLabels, 'int32'), drop, recompute);
    const N = B * T;
    return headTeacherForcedHidden(gen, tf.reshape(h, [N, cfg.width]), tf.reshape(tokens, [N, K]), drop, recompute);
  });
}

/**
 * Teacher-forced logits for whole images: generatorHidden through the output layers.
 * tokens: int32 [B, T, K], labels: [B] in [0, numClasses] -> K tensors, the k-th [B, T, V_k].
 */
export function generatorLogits(gen: Generator, tokens: tf.Tensor3D, labels: Int32Array, opts: LossOptions): tf.Tensor3D[] {
  const [B, T] = tokens.shape;
  return tf.tidy(() =>
    generatorHidden(gen, tokens, labels, opts).map(
      (x, k) => tf.reshape(headOutput(gen, k, x), [B, T, gen.cfg.subCodebookSizes[k]]) as tf.Tensor3D,
    ),
  );
}

/**
 * The training objective. tokens: int32 [B, T, K], labels: [B]. Returns scalars (the caller disposes them).
 * Use inside tf.variableGrads by returning `.loss` and tf.keep-ing the others if they are wanted.
 */
export function generatorLoss(
  gen: Generator,
  tokens: tf.Tensor3D,
  labels: Int32Array,
  opts: LossOptions,
): GeneratorLoss {
  return tf.tidy(() => {
    const hidden = generatorHidden(gen, tokens, labels, opts);
    const K = gen.cfg.subCodebookSizes.length;
    const targets = tf.unstack(tf.reshape(tokens, [-1, K]), 1) as tf.Tensor1D[]; // K x [B*T]
    const subLosses: tf.Scalar[] = [];
    const subAccuracy: tf.Scalar[] = [];
    hidden.forEach((x, k) => {
      // Fused output layer + cross-entropy: the [B*T, V_k] logits are never kept on the tape (large vocabularies).
      const [ce, acc] = tf.unstack(linearCrossEntropy(x, gen.params.get(`head/out${k}/w`) as tf.Tensor2D, gen.params.get(`head/out${k}/b`) as tf.Tensor1D, targets[k]!));
      subLosses.push(ce as tf.Scalar);
      subAccuracy.push(acc as tf.Scalar);
    });
    const loss = tf.div(tf.addN(subLosses), K) as tf.Scalar;
    return { loss, subLosses, subAccuracy };
  });
}
