import { presetFashion, type TokenizerConfig } from '@factorgen/tokenizer';

/** How long a comparison runs: per-tokenizer steps and batch, evaluation size, and generator settings. */
export type Budget = {
  name: string;
  tokenizerSteps: number;
  batch: number;
  baseChannels: number;
  teacherSteps: number;
  evalImages: number;
  generatorSteps: number;
  generatorWidth: number;
  generatorDepth: number;
  samplesPerClass: number;
};

/** `smoke` checks that everything runs; `small` finishes in about 20 minutes on 2 cores (tokenizers only); the others are for real runs. */
export const budgets: Record<string, Budget> = {
  // A minute-long check that every stage runs (numbers meaningless).
  smoke: { name: 'smoke', tokenizerSteps: 3, batch: 4, baseChannels: 8, teacherSteps: 3, evalImages: 50, generatorSteps: 3, generatorWidth: 32, generatorDepth: 1, samplesPerClass: 2 },
  small: { name: 'small', tokenizerSteps: 150, batch: 16, baseChannels: 16, teacherSteps: 150, evalImages: 1000, generatorSteps: 60, generatorWidth: 64, generatorDepth: 2, samplesPerClass: 10 },
  medium: { name: 'medium', tokenizerSteps: 1000, batch: 32, baseChannels: 24, teacherSteps: 600, evalImages: 5000, generatorSteps: 1000, generatorWidth: 128, generatorDepth: 4, samplesPerClass: 50 },
  large: { name: 'large', tokenizerSteps: 4000, batch: 32, baseChannels: 32, teacherSteps: 1500, evalImages: 10000, generatorSteps: 4000, generatorWidth: 192, generatorDepth: 6, samplesPerClass: 100 },
};

/** One row of the comparison: a name, what it tests, and its tokenizer config (needsTeacher: alignment on). */
export type Variant = { id: string; label: string; config: TokenizerConfig; needsTeacher: boolean };

/**
 * The comparison set at `bits` bits per position for the single codebook: vq V=2^bits; vq with 2 x 2^bits codes (the
 * same total codebook entries as fq K=2 V=2^bits, one bit more per position); fq K=2 at the same total bits
 * (V=2^(bits/2) each); fq K=2 with V=2^bits each (larger vocabulary) without disentanglement, then with it, then with
 * FQGAN's alignment (class-token head, one-directional InfoNCE, weight 0.5, on sub-codebook 1); optionally K=3 and K=8
 * (UniTok-style many small sub-codebooks). Every fq variant factorizes in the encoder (FQGAN's branches,
 * presetFashion's default for fq).
 */
export function comparisonVariants(b: Budget, opts: { imageSize: number; channels: 1 | 3; bits: number; manyK: boolean; teacherDim: number }): Variant[] {
  const V = 2 ** opts.bits;
  const half = 2 ** Math.floor(opts.bits / 2);
  const base = (kind: 'vq' | 'fq', K: number, size: number): TokenizerConfig => {
    const c = presetFashion(kind, K, size, { baseChannels: b.baseChannels });
    return { ...c, imageSize: opts.imageSize, channels: opts.channels, perceptualWeight: 0, adversarial: undefined, align: undefined };
  };
  const withDisentangle = (c: TokenizerConfig, w: number): TokenizerConfig => ({ ...c, quantizer: { ...c.quantizer, disentangleWeight: w } });
  const out: Variant[] = [
    { id: 'vq', label: `vq V=${V}`, config: base('vq', 1, V), needsTeacher: false },
    { id: 'vq-2v', label: `vq V=${2 * V} (entries of fq K=2 V=${V}x2)`, config: base('vq', 1, 2 * V), needsTeacher: false },
    { id: 'fq2-same-bits', label: `fq K=2 V=${half}x2 (same bits)`, config: withDisentangle(base('fq', 2, half), 0), needsTeacher: false },
    { id: 'fq2', label: `fq K=2 V=${V}x2`, config: withDisentangle(base('fq', 2, V), 0), needsTeacher: false },
    { id: 'fq2-dis', label: `fq K=2 V=${V}x2 + disentangle`, config: withDisentangle(base('fq', 2, V), 0.1), needsTeacher: false },
  ];
  const aligned = withDisentangle(base('fq', 2, V), 0.1);
  // FQGAN's FeatPredHead form (one block at this scale, FQGAN uses 3), aligned to teacher 0 (the compare's classifier).
  aligned.alignTargets = [{ subCodebook: 1, teacher: 0, teacherDim: opts.teacherDim, weight: 0.5, layers: 1, heads: 4 }];
  out.push({ id: 'fq2-dis-align', label: `fq K=2 V=${V}x2 + disentangle + align (FQGAN head)`, config: aligned, needsTeacher: true });
  if (opts.manyK) {
    out.push({ id: 'fq3', label: `fq K=3 V=${V}x3 + disentangle`, config: withDisentangle(base('fq', 3, V), 0.1), needsTeacher: false });
    out.push({ id: 'fq8', label: `fq K=8 V=${V}x8 + disentangle`, config: withDisentangle(base('fq', 8, V), 0.1), needsTeacher: false });
  }
  return out;
}
