import { UserError } from '@factorgen/tfjs-ext';
import presetData from './presets.json' with { type: 'json' };
import type { Factorization, QuantizerConfig, QuantizerKind, SubCodebookConfig, TokenizerConfig } from './schema';
import { TOKENIZER_CONFIG_VERSION } from './migrate';
import { assertValidConfig } from './validate';

/**
 * presets.json, typed: every tokenizer default in one place (quantizer settings, the fashion model preset, the CLI's
 * flag defaults that are not model values, and --preset fqgan). config.ts builds configs from it; the CLI's option
 * defaults read it.
 */
export const TOKENIZER_PRESETS = presetData as {
  version: 2;
  quantizer: {
    beta: number; entropyWeight: number; entropyTemperature: number; entropyLogits: 'cosine' | 'sq-dist'; disentangleWeight: number;
    disentangleOn: 'quantized' | 'pre'; lossOverK: Record<QuantizerKind, 'sum' | 'mean'>; attention: 'causal' | 'bidirectional';
  };
  fashion: {
    imageSize: number; channels: 1 | 3; baseChannels: number; channelMult: number[]; blocksPerLevel: number; attention: boolean; normGroups: number;
    latentChannels: number; codeDim: number; perceptualWeight: number; adversarial: { weight: number; startStep: number; baseChannels: number; layers: number };
    factorize: Record<QuantizerKind, Factorization>; branchBlocks: number;
  };
  cli: {
    steps: number; batch: number; lr: number; warmup: number; quantizer: 'vq' | 'fq'; subCodebooks: number; codebookSize: number[]; alignWeight: number;
    alignTargetWeight: number; alignLayers: number; alignHeads: number; adversarialWeight: number; adversarialStart: number; usageWindow: number;
    restartDeadEvery: number; ema: number; quantProj: 'linear' | 'attn';
  };
  fqgan: {
    quantizer: 'vq' | 'fq'; subCodebooks: number; factorize: Factorization; codeDim: number; beta: number; entropyWeight: number; entropyTemperature: number;
    disentangleWeight: number; disentangleOn: 'quantized' | 'pre'; perceptualWeight: number; alignTargetSubCodebook: number; alignTargetWeight: number;
    adversarialWeight: number; adversarialStartFraction: number; restartDeadEvery: number; ema: number;
  };
};

/** --align-target k:DIR (repeatable) -> [sub-codebook, teacher folder] pairs; teachers are numbered in this order. UserError naming the flag. */
export function parseAlignTargets(specs: string[], K: number): { subCodebook: number; dir: string }[] {
  return specs.map((s) => {
    const m = /^(\d+):(.+)$/.exec(s);
    if (!m) throw new UserError(`--align-target ${s}: expected <sub-codebook>:<teacher folder>, e.g. 1:runs/teacher`);
    const k = Number(m[1]);
    if (k >= K) throw new UserError(`--align-target ${s}: sub-codebook ${k} does not exist (K = ${K})`);
    return { subCodebook: k, dir: m[2] };
  });
}

/** The `tokenizer train` flags a preset reads or sets (the CLI's option names, camelCase). */
export type TokenizerPresetFlags = {
  preset?: string; resume?: boolean; teacher?: string; steps: number; alignTarget: string[];
  quantizer: 'vq' | 'fq'; subCodebooks: number; codeDim: number; beta: number; entropyWeight: number; entropyTemperature: number;
  disentangleWeight?: number; disentangleOn: 'quantized' | 'pre'; factorize?: Factorization; perceptualWeight: number;
  alignTargetWeight: number; adversarialWeight: number; adversarialStart: number; restartDeadEvery: number; ema: number;
};

/**
 * --preset fqgan: FQGAN's choices (train_fqgan_dual.sh, vq_loss.py) at this project's scale (TOKENIZER_PRESETS.fqgan),
 * for every flag the user did not set: fq with K = 2 branches off a shared trunk; disentanglement 0.1 on the quantized
 * codes; entropy loss 0.03 at temperature 0.01 on -||z-c||^2; beta 0.25; code dim 8; sub-codebook 1 aligned to the
 * --teacher (class-token head, one-directional InfoNCE, weight 0.5; 1 head block instead of FQGAN's 3); perceptual loss
 * weight 1 from the teacher's features (FQGAN: LPIPS at 1); PatchGAN hinge loss weight 0.5 from 10% of the steps (FQGAN:
 * 20k of ~200k); no dead-code restarts (FQGAN has none: its codebook_used only counts usage). Ours, not FQGAN's: an EMA
 * of the weights with decay 0.995 (FQGAN's tokenizer script, train_fqgan_dual.sh, trains without --ema).
 * FQGAN-Triple: --align-target flags replace the default target; when they name sub-codebooks beyond 1 and
 * --sub-codebooks is not given, K becomes one more than the highest one named (e.g. `--align-target 1:A
 * --align-target 2:B` gives K = 3: sub-codebook 0 left to pixels, 1 and 2 aligned to two teachers, as FQGAN-Triple).
 * No preset, or --resume (every setting comes from the checkpoint): `f` as it is. Needs --teacher (UserError).
 * Returns the flags with the preset applied (a new object).
 */
export function applyPreset<F extends TokenizerPresetFlags>(f: F, isDefault: (flag: keyof F) => boolean): F {
  if (f.preset !== 'fqgan' || f.resume) return f;
  if (!f.teacher) throw new UserError('--preset fqgan: needs --teacher DIR (its features give the perceptual loss, its embedding the alignment target)');
  const p = TOKENIZER_PRESETS.fqgan;
  const out: F = { ...f };
  const set = <K extends keyof TokenizerPresetFlags & keyof F>(k: K, v: F[K]) => {
    if (isDefault(k)) out[k] = v;
  };
  set('quantizer', p.quantizer as F['quantizer']);
  const named = parseAlignTargets(f.alignTarget, 8).map((t) => t.subCodebook);
  set('subCodebooks', Math.max(p.subCodebooks, ...named.map((k) => k + 1)) as F['subCodebooks']);
  set('codeDim', p.codeDim as F['codeDim']);
  set('beta', p.beta as F['beta']);
  set('entropyWeight', p.entropyWeight as F['entropyWeight']);
  set('entropyTemperature', p.entropyTemperature as F['entropyTemperature']);
  set('disentangleWeight', p.disentangleWeight as F['disentangleWeight']);
  set('disentangleOn', p.disentangleOn as F['disentangleOn']);
  if (f.factorize === undefined) out.factorize = p.factorize as F['factorize'];
  set('perceptualWeight', p.perceptualWeight as F['perceptualWeight']);
  if (f.alignTarget.length === 0) out.alignTarget = [`${p.alignTargetSubCodebook}:${f.teacher}`] as F['alignTarget'];
  set('alignTargetWeight', p.alignTargetWeight as F['alignTargetWeight']);
  set('adversarialWeight', p.adversarialWeight as F['adversarialWeight']);
  set('adversarialStart', Math.round(p.adversarialStartFraction * f.steps) as F['adversarialStart']);
  set('restartDeadEvery', p.restartDeadEvery as F['restartDeadEvery']);
  set('ema', p.ema as F['ema']);
  return out;
}

/**
 * Quantizer defaults: beta 0.25; entropy term 0.1 at temperature 0.02 on -||z-c||^2 (0.01 on cosine; without it a 16-image overfit used
 * ~5.5 of 64 codes per sub-codebook (perplexity); with it ~62, at equal or better PSNR); disentangle 0.1
 * when K >= 2 (FQGAN), else 0, on the quantized codes (FQGAN).
 */
export function quantizerDefaults<K extends QuantizerKind>(kind: K, subCodebooks: SubCodebookConfig[]): QuantizerConfig & { kind: K } {
  // presets.json: 0.02 on -||z-c||^2 is the 0.01 on cosine logits the project used before expressing it as FQGAN
  // does; UniTok averages its quantizer losses over the K codebooks, FQGAN sums them.
  const d = TOKENIZER_PRESETS.quantizer;
  const q: QuantizerConfig & { kind: K } = {
    kind,
    subCodebooks: subCodebooks.map((s) => ({ ...s })),
    beta: d.beta,
    entropyWeight: d.entropyWeight,
    entropyTemperature: d.entropyTemperature,
    entropyLogits: d.entropyLogits,
    disentangleWeight: subCodebooks.length >= 2 ? d.disentangleWeight : 0,
    disentangleOn: d.disentangleOn,
    lossOverK: d.lossOverK[kind],
  };
  if (kind === 'unitok') q.attention = d.attention;
  return q;
}

/**
 * CPU-sized preset for 28x28 grayscale Fashion-MNIST: 7x7 grid (channelMult [1,2,2]), widths 32/64/64
 * (`baseChannels` scales them; 16 is ~3-4x cheaper), one ResBlock per level, mid attention over 49 positions. `K` sub-codebooks of `V` codes, dim 8 each
 * (LlamaGen/FQGAN use dim 8 with cosine codebooks). No alignment: FQGAN's is `alignTargets` (the CLI's
 * --align-target); the older `align` form (mean-pooled MLP, symmetric InfoNCE) is ours, not FQGAN's, and no preset sets it.
 */
export function presetFashion(
  kind: QuantizerKind,
  K: number,
  V: number,
  opts: { baseChannels?: number } = {},
): TokenizerConfig {
  if (kind === 'vq' && K !== 1) throw new UserError(`presetFashion: kind "vq" needs K = 1 (got ${K})`);
  const p = TOKENIZER_PRESETS.fashion;
  const cfg: TokenizerConfig = {
    version: TOKENIZER_CONFIG_VERSION,
    imageSize: p.imageSize,
    channels: p.channels,
    baseChannels: opts.baseChannels ?? p.baseChannels,
    channelMult: [...p.channelMult],
    blocksPerLevel: p.blocksPerLevel,
    attention: p.attention,
    normGroups: p.normGroups,
    latentChannels: p.latentChannels,
    quantizer: quantizerDefaults(kind, Array.from({ length: K }, () => ({ size: V, dim: p.codeDim }))),
    perceptualWeight: p.perceptualWeight,
    adversarial: { ...p.adversarial },
    // fq factorizes in the encoder (FQGAN); vq has one codebook, so one projection of one latent.
    factorize: p.factorize[kind],
    branchBlocks: p.branchBlocks,
    alignTargets: [],
  };
  assertValidConfig(cfg, 'presetFashion');
  return cfg;
}
