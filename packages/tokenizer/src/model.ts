import * as tf from '@tensorflow/tfjs';
import { ParamStore, Rng, stopGradient } from '@factorgen/nn';
import type { StoredTokenizerConfig, TokenizerConfig } from './config/schema';
import { currentConfig } from './config/validate';
import { createAlignHead, alignLoss } from './losses/align';
import { alignTargetLoss, createAlignTargetHead } from './losses/alignHead';
import { decode, createDecoder } from './arch/decoder';
import { disentangleLoss } from './losses/disentangle';
import { createEncoder, encode } from './arch/encoder';
import { featureDistance } from './losses/perceptual';
import { createQuantizer, lookupCodes, quantize } from './quant/quantizer';
import type { FrozenTeacher } from './teacher/teacher';

/**
 * A tokenizer: its config (the current version, what model code reads), the config as it was given or stored (any
 * version; what ids and token files hash, see configHash) and its parameters ('encoder/', 'quant/', 'decoder/', 'align/').
 */
export type Tokenizer = { cfg: TokenizerConfig; stored: StoredTokenizerConfig; params: ParamStore };

/**
 * Validates `cfg` (any version: migrated by currentConfig; UserError on problems) and creates all parameters from `seed`, in a fixed order:
 * encoder, quantizer, decoder, align head. Variables are registered in tfjs under their names, so only one
 * tokenizer can be alive per process at a time: dispose `params` before creating another.
 * `alignHeads: false` leaves out the alignment heads ('align/'): they only feed a training loss, so a tokenizer built
 * for encoding and decoding (loaded from a checkpoint or an export) has none.
 */
export function createTokenizer(
  stored: StoredTokenizerConfig,
  seed: string | number,
  opts: { alignHeads?: boolean; budget?: { shapes: Map<string, { shape: number[]; dtype: string }>; where: string } } = {},
): Tokenizer {
  const cfg = currentConfig(stored);
  // budget: built to receive a checkpoint, it may not grow past what the checkpoint holds (see ParamStore).
  const params = new ParamStore(new Rng(String(seed)).derive('tokenizer'), opts.budget);
  try {
    createEncoder(params, cfg);
    createQuantizer(params, cfg);
    createDecoder(params, cfg);
    if (opts.alignHeads ?? true) {
      if (cfg.align) createAlignHead(params, cfg);
      cfg.alignTargets.forEach((_t, i) => createAlignTargetHead(params, cfg, i));
    }
    params.assertMatches();
  } catch (e) {
    params.dispose();
    throw e;
  }
  return { cfg, stored, params };
}

/** Everything one forward pass produces; the caller owns (disposes) all tensors. */
export type TokenizerForward = {
  /** [B,H,W,C] unclamped reconstruction */
  recon: tf.Tensor4D;
  /** [B,h,w,latentChannels] decoder input (post-projected straight-through codes) */
  quantized: tf.Tensor4D;
  /** int32 [B,h,w,K] */
  indices: tf.Tensor4D;
  /** per sub-codebook [B,h,w,d_k]: normalized pre-quantization codes */
  subCodes: tf.Tensor4D[];
  /** per sub-codebook [B,h,w,d_k]: straight-through quantized codes */
  quantizedSub: tf.Tensor4D[];
  /**
   * Scalars, each already multiplied by its config weight so that `total` is their sum:
   * recon = mean((recon - x)^2) (MSE: LlamaGen/FQGAN's default 'l2', and what PSNR measures),
   * codebook, commitment (beta), entropy (entropyWeight), disentangle (disentangleWeight),
   * perceptual (perceptualWeight; 0 without a teacher), align (the sum over alignment targets of weight x FQGAN InfoNCE,
   * plus the older `align` term; 0 without teachers or targets).
   * The adversarial term is the trainer's (it owns the discriminator).
   */
  losses: {
    recon: tf.Scalar;
    codebook: tf.Scalar;
    commitment: tf.Scalar;
    entropy: tf.Scalar;
    disentangle: tf.Scalar;
    perceptual: tf.Scalar;
    align: tf.Scalar;
  };
  total: tf.Scalar;
};

export type ForwardOptions = {
  /** frozen teacher for the perceptual loss and the older `align`; without it both are 0 (default: teachers[0]) */
  teacher?: FrozenTeacher;
  /** the teachers that cfg.alignTargets[i].teacher index; a target whose teacher is missing contributes 0 */
  teachers?: FrozenTeacher[];
  /**
   * Reserved for stochastic regularizers (dropout, code noise): today no layer behaves differently in training
   * (GroupNorm keeps no running statistics), so these do not change the result.
   */
  training?: boolean;
  rng?: Rng;
};

/**
 * Full pass x -> encode -> quantize -> decode with all tokenizer losses. x: [B,H,W,C] in [-1,1].
 * Run inside tf.tidy / tf.variableGrads (intermediates are not disposed here).
 */
export function tokenizerForward(tok: Tokenizer, x: tf.Tensor4D, opts: ForwardOptions = {}): TokenizerForward {
  const { cfg, params } = tok;
  checkImages(cfg, x, 'tokenizerForward');
  const q = quantize(params, cfg, encode(params, cfg, x));
  const recon = decode(params, cfg, q.quantized);
  const d = tf.sub(recon, x);
  const losses = {
    recon: tf.mean(tf.mul(d, d)) as tf.Scalar,
    ...q.losses,
    // FQGAN compares the straight-through quantized codes; 'pre' (version-1 configs) the normalized encoder codes.
    disentangle: disentangleLoss(cfg.quantizer.disentangleOn === 'quantized' ? q.quantizedSub : q.subCodes, cfg.quantizer.disentangleWeight),
    perceptual: tf.scalar(0),
    align: tf.scalar(0),
  };
  const teachers = opts.teachers ?? [];
  const teacher = opts.teacher ?? teachers[0];
  // Each teacher runs once on x for every term that needs it.
  const runs = new Map<FrozenTeacher, ReturnType<FrozenTeacher['run']>>();
  const runOnX = (t: FrozenTeacher) => {
    if (!runs.has(t)) runs.set(t, t.run(x));
    return runs.get(t)!;
  };
  const wantPerceptual = cfg.perceptualWeight > 0;
  const wantAlign = cfg.align !== undefined && cfg.align.weight > 0;
  const alignTerms: tf.Scalar[] = [];
  if (teacher && (wantPerceptual || wantAlign)) {
    const tx = runOnX(teacher);
    if (wantPerceptual) {
      if (tx.features.length === 0) throw new Error('tokenizerForward: perceptualWeight > 0 needs a teacher with feature maps (this one has none)');
      const fx = tx.features.map((f) => stopGradient(f));
      losses.perceptual = tf.mul(featureDistance(fx, teacher.run(recon).features), cfg.perceptualWeight);
    }
    if (cfg.align && wantAlign) alignTerms.push(alignLoss(params, cfg, q.quantizedSub[cfg.align.subCodebook], tx.embedding));
  }
  cfg.alignTargets.forEach((t, i) => {
    const tt = teachers[t.teacher];
    if (!tt || t.weight === 0) return;
    alignTerms.push(alignTargetLoss(params, cfg, i, q.quantizedSub[t.subCodebook], runOnX(tt).embedding));
  });
  if (alignTerms.length > 0) losses.align = tf.addN(alignTerms) as tf.Scalar;
  const total = tf.addN(Object.values(losses)) as tf.Scalar;
  return { recon, quantized: q.quantized, indices: q.indices, subCodes: q.subCodes, quantizedSub: q.quantizedSub, losses, total };
}

/** x: [B,H,W,C] in [-1,1] -> tokens int32 [B,h,w,K]. Tidy: only the result survives. */
export function encodeTokens(tok: Tokenizer, x: tf.Tensor4D): tf.Tensor4D {
  checkImages(tok.cfg, x, 'encodeTokens');
  return tf.tidy(() => quantize(tok.params, withoutEntropyLoss(tok.cfg), encode(tok.params, tok.cfg, x)).indices);
}

/**
 * cfg with the entropy (code usage) weight at 0: the same codes, without the loss's softmax over every code of
 * every position, which tokens do not need (with 2 x 16384 codes it was most of `tokenizer encode`'s time).
 */
function withoutEntropyLoss(cfg: TokenizerConfig): TokenizerConfig {
  return { ...cfg, quantizer: { ...cfg.quantizer, entropyWeight: 0 } };
}

/** tokens int32 [B,h,w,K] -> images [B,H,W,C] clamped to [-1,1]. Tidy: only the result survives. */
export function decodeTokens(tok: Tokenizer, indices: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(decode(tok.params, tok.cfg, lookupCodes(tok.params, tok.cfg, indices)), -1, 1));
}

function checkImages(cfg: TokenizerConfig, x: tf.Tensor4D, where: string): void {
  const [, H, W, C] = x.shape;
  if (x.rank !== 4 || H !== cfg.imageSize || W !== cfg.imageSize || C !== cfg.channels) {
    throw new Error(`${where}: images must be [B,${cfg.imageSize},${cfg.imageSize},${cfg.channels}] (got [${x.shape}])`);
  }
}
