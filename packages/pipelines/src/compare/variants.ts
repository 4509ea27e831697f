/**
 * What `compare` runs: budgets (steps, sizes, seeds) and variants (tokenizer configs, generator heads), as plain data.
 * Pure: no I/O.
 */
import { presetFashion, type QuantizerKind, type TokenizerConfig } from '@factorgen/tokenizer';
import { UserError } from '@factorgen/tfjs-ext';

/** How much one compare spends per run (a run = one variant at one seed). */
export type CompareBudget = {
  name: 'smoke' | 'small' | 'medium' | 'large';
  /** Paired seeds when --seeds is not given. */
  seeds: number;
  /** Variants run when --variants is not given (the others are opt-in). */
  variants: string[];
  tokenizer: { steps: number; batch: number; baseChannels: number; lr: number };
  /** Test images whose reconstructions are scored (rFID, PSNR, SSIM); the rFID floor uses the same n. */
  reconImages: number;
  teacherSteps: number;
  generator: { steps: number; batch: number; width: number; depth: number; headLayers: number; lr: number };
  /** Samples per class scored for FID, class accuracy, precision and recall; the FID floor uses the same n. */
  samplesPerClass: number;
  /** Sampling guidance (CFG scale); the generator trains with class dropout 0.1 so that it applies. */
  cfgScale: number;
  /**
   * Estimated seconds per training step of one run on 1 wasm thread (vq tokenizer; FAR-head generator), for the plan's
   * time estimate only (docs/compare.md gives the measurements).
   */
  secondsPerStep: { tokenizer: number; generator: number };
};

const mainQuestion = ['vq', 'fq2-same-bits', 'fq2'];

/**
 * `smoke` checks that every stage runs (numbers meaningless); `small` fits in about 5 minutes on 2 cores; `medium`
 * (the default) answers the main question (vq V vs fq K=2 x V vs fq at equal bits, 3 seeds, tokenizer and generation)
 * in at most about 3 hours on 2 cores; `large` is for a long run or a GPU.
 */
export const compareBudgets: Record<CompareBudget['name'], CompareBudget> = {
  smoke: {
    name: 'smoke', seeds: 2, variants: ['vq', 'fq2'],
    tokenizer: { steps: 4, batch: 4, baseChannels: 8, lr: 2e-3 }, reconImages: 40, teacherSteps: 3,
    generator: { steps: 4, batch: 8, width: 32, depth: 1, headLayers: 1, lr: 2e-3 }, samplesPerClass: 2, cfgScale: 2,
    secondsPerStep: { tokenizer: 0.05, generator: 0.05 },
  },
  small: {
    name: 'small', seeds: 2, variants: mainQuestion,
    tokenizer: { steps: 60, batch: 16, baseChannels: 16, lr: 2e-3 }, reconImages: 500, teacherSteps: 60,
    generator: { steps: 60, batch: 32, width: 64, depth: 2, headLayers: 1, lr: 2e-3 }, samplesPerClass: 10, cfgScale: 2,
    secondsPerStep: { tokenizer: 0.25, generator: 0.15 },
  },
  medium: {
    name: 'medium', seeds: 3, variants: mainQuestion,
    tokenizer: { steps: 800, batch: 32, baseChannels: 24, lr: 2e-3 }, reconImages: 2000, teacherSteps: 600,
    generator: { steps: 500, batch: 64, width: 128, depth: 3, headLayers: 1, lr: 1e-3 }, samplesPerClass: 50, cfgScale: 2,
    // CPU seconds per step of these sizes on 1 wasm thread, measured under load 13-30
    // (a 25- minus a 5-step run): tokenizer vq 0.83, fq 2x1024 0.99, fq 2x32 1.08; generator FAR head 1.85, parallel 1.20.
    secondsPerStep: { tokenizer: 0.85, generator: 1.85 },
  },
  large: {
    name: 'large', seeds: 5, variants: [...mainQuestion, 'vq-2v', 'fq2-dis', 'fq2-dis-align', 'unitok', 'fq2-parallel'],
    tokenizer: { steps: 4000, batch: 64, baseChannels: 32, lr: 2e-3 }, reconImages: 10000, teacherSteps: 1500,
    generator: { steps: 4000, batch: 64, width: 192, depth: 6, headLayers: 2, lr: 1e-3 }, samplesPerClass: 100, cfgScale: 2,
    secondsPerStep: { tokenizer: 2.4, generator: 1.2 },
  },
};

/** One row of the comparison: a tokenizer variant (trains a tokenizer) or a generator variant on another's tokens. */
export type CompareVariant = {
  id: string;
  label: string;
  /** The variant it is compared with (paired by seed); null for the baseline itself. */
  baseline: string | null;
  /** Tokenizer variants: the config; generator variants: null, and `tokensOf` names the tokenizer variant. */
  tokenizer: TokenizerConfig | null;
  tokensOf: string | null;
  /** 'ar' = FQGAN's factorized AR head over the K sub-tokens; 'parallel' = K independent linear heads. */
  headMode: 'ar' | 'parallel';
  /** Needs the alignment teacher (FQGAN alignment). */
  needsTeacher: boolean;
};

/** Every variant id `--variants` accepts, in report order. */
export const compareVariantIds = ['vq', 'vq-2v', 'fq2-same-bits', 'fq2', 'fq2-dis', 'fq2-dis-align', 'unitok', 'fq2-parallel'] as const;

/**
 * The variants at `bits` bits per position for the single codebook (V = 2^bits), on images of `imageSize` x
 * `channels`:
 * - vq: one codebook of V codes (the baseline);
 * - vq-2v: one codebook of 2V codes (the entries of fq K=2 x V);
 * - fq2-same-bits: FQGAN's factorization, K=2 sub-codebooks of 2^(bits/2) (the same bits per position as vq);
 * - fq2: K=2 x V (twice the bits: factorization growing the vocabulary); fq2-dis: + disentanglement 0.1;
 *   fq2-dis-align: + FQGAN's alignment (class-token head, weight 0.5, sub-codebook 1 to a classifier teacher);
 * - unitok: UniTok's multi-codebook quantization, K=4 codebooks of 2^(bits/2) codes each over one latent
 *   (projection), its attention projection (bidirectional) and losses averaged over K (UniTok's VectorQuantizerM);
 * - fq2-parallel: a generator variant: fq2's tokens with a parallel head instead of the FAR head.
 * Every fq variant factorizes in the encoder (FQGAN's branches). Perceptual and adversarial losses are off (no
 * teacher needed) so that each difference is the quantizer's.
 */
export function compareVariants(
  budget: CompareBudget,
  opts: { imageSize: number; channels: 1 | 3; bits: number; teacherDim: number },
): CompareVariant[] {
  if (!Number.isInteger(opts.bits) || opts.bits < 2 || opts.bits > 16) throw new UserError(`bits ${opts.bits}: must be an integer from 2 to 16`);
  const V = 2 ** opts.bits;
  const half = 2 ** Math.floor(opts.bits / 2);
  const base = (kind: QuantizerKind, K: number, size: number, disentangle: number): TokenizerConfig => {
    const c = presetFashion(kind, K, size, { baseChannels: budget.tokenizer.baseChannels });
    return {
      ...c, imageSize: opts.imageSize, channels: opts.channels, perceptualWeight: 0, adversarial: undefined, align: undefined,
      quantizer: { ...c.quantizer, disentangleWeight: disentangle },
    };
  };
  const tok = (id: string, label: string, config: TokenizerConfig, needsTeacher = false): CompareVariant =>
    ({ id, label, baseline: id === 'vq' ? null : 'vq', tokenizer: config, tokensOf: null, headMode: 'ar', needsTeacher });
  const aligned = base('fq', 2, V, 0.1);
  // FQGAN's FeatPredHead form (one block at this scale; FQGAN uses 3), aligned to the compare's classifier teacher.
  aligned.alignTargets = [{ subCodebook: 1, teacher: 0, teacherDim: opts.teacherDim, weight: 0.5, layers: 1, heads: 4 }];
  // The registry's 'unitok' kind: one latent (projection), the attention projection, losses averaged over K.
  const unitok = base('unitok', 4, half, 0);
  return [
    tok('vq', `vq V=${V}`, base('vq', 1, V, 0)),
    tok('vq-2v', `vq V=${2 * V} (the entries of fq K=2 x ${V})`, base('vq', 1, 2 * V, 0)),
    tok('fq2-same-bits', `fq K=2 x ${half} (same bits as vq)`, base('fq', 2, half, 0)),
    tok('fq2', `fq K=2 x ${V}`, base('fq', 2, V, 0)),
    tok('fq2-dis', `fq K=2 x ${V} + disentangle`, base('fq', 2, V, 0.1)),
    tok('fq2-dis-align', `fq K=2 x ${V} + disentangle + FQGAN alignment`, aligned, true),
    tok('unitok', `UniTok K=4 x ${half} (attention projection)`, unitok),
    { id: 'fq2-parallel', label: `fq K=2 x ${V}, parallel head (vs FAR head)`, baseline: 'fq2', tokenizer: null, tokensOf: 'fq2', headMode: 'parallel', needsTeacher: false },
  ];
}

/**
 * The variants to run, from `--variants` (ids separated by commas; undefined = the budget's), in report order, with
 * the baselines they are compared with added. Throws a one-line error for an unknown id.
 */
export function selectVariants(all: CompareVariant[], requested: string[] | undefined, budget: CompareBudget): CompareVariant[] {
  const ids = new Set(requested ?? budget.variants);
  for (const id of ids) {
    if (!all.some((v) => v.id === id)) throw new UserError(`variants: unknown variant "${id}" (choose from ${all.map((v) => v.id).join(', ')})`);
  }
  // A variant needs its baseline and, for generator variants, the tokenizer whose tokens it uses.
  for (let changed = true; changed; ) {
    changed = false;
    for (const v of all) {
      if (!ids.has(v.id)) continue;
      for (const need of [v.baseline, v.tokensOf]) if (need && !ids.has(need)) { ids.add(need); changed = true; }
    }
  }
  return all.filter((v) => ids.has(v.id));
}
