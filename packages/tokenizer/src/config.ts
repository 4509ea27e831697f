import { Sha256 } from '@factorgen/formats';
import { UserError } from '@factorgen/tfjs-ext';
import { migrateTokenizerConfig, TOKENIZER_CONFIG_VERSION } from './migrate';
import { TOKENIZER_PRESETS } from './presets';

/** One sub-codebook: `size` codes of dimension `dim` (cosine-matched, so vectors live on the unit sphere). */
export type SubCodebookConfig = { size: number; dim: number };

/**
 * The quantizer kinds (quant registry, quantizer.ts): 'vq' is the single-codebook baseline (exactly one
 * sub-codebook); 'fq' factorizes the codebook into K independent sub-codebooks (FQGAN), each with its own 1x1
 * projection; 'unitok' is UniTok's multi-codebook quantizer: the K sub-codebooks behind one attention projection
 * (attnProj.ts) before and after quantization (UniTok's quant_proj / post_quant_proj).
 */
export type QuantizerKind = 'vq' | 'fq' | 'unitok';

/** Quantizer settings (version 2: every field written out). */
export type QuantizerConfig = {
  kind: QuantizerKind;
  subCodebooks: SubCodebookConfig[];
  /** commitment weight (0.25 in VQ-VAE / LlamaGen / FQGAN) */
  beta: number;
  /** weight of (per-sample entropy - batch entropy) of softmax(logits / entropyTemperature); 0 disables it */
  entropyWeight: number;
  /** temperature of the entropy loss's softmax; what the logits are is `entropyLogits` */
  entropyTemperature: number;
  /**
   * The entropy loss's logits: 'sq-dist' = -||z - c||^2 = 2 cos - 2 (FQGAN/LlamaGen's compute_entropy_loss(-d), so a
   * temperature means what it means there); 'cosine' = cos (version-1 configs without the field).
   * 'cosine' at T equals 'sq-dist' at 2T.
   */
  entropyLogits: 'cosine' | 'sq-dist';
  /** weight of the mean squared cosine between sub-codes (FQGAN: 0.1 for K >= 2; must be 0 for K = 1) */
  disentangleWeight: number;
  /**
   * Which codes the disentanglement loss compares: 'quantized' = the straight-through quantized codes (FQGAN's
   * compute_disentangle_loss(quant_vis, quant_sem)); 'pre' = the normalized pre-quantization codes (version-1
   * configs without the field).
   */
  disentangleOn: 'quantized' | 'pre';
  /**
   * How the K sub-codebooks' codebook, commitment and entropy losses combine: 'mean' (UniTok's VectorQuantizerM,
   * which divides its summed vq and entropy losses by num_codebooks; what new 'unitok' configs get) or 'sum'
   * (FQGAN's, which adds its two quantizers' losses; version-1 configs without the field).
   */
  lossOverK: 'sum' | 'mean';
  /**
   * 'unitok' only (absent for the other kinds): the attention inside its projections, 'bidirectional' (what new
   * configs get: UniTok's PlainAttention since its commit b015f87, April 2025) or 'causal' over raster order
   * (UniTok's first release; version-1 attn configs without attnProjAttention).
   */
  attention?: 'causal' | 'bidirectional';
};

/**
 * Where the sub-codebooks part ways (`factorize`):
 * - 'projection': one encoder latent, one 1x1 projection per sub-codebook (version-1 configs without the field).
 *   With K projections of one latent the disentanglement loss has trivial zeros (one projection an
 *   antisymmetric map of the other), which is why FQGAN does not do this.
 * - 'branch' (FQGAN, vq_model_dual.py): a shared trunk (conv_in, levels, mid), then per sub-codebook its own branch:
 *   an adapter of `branchBlocks` blocks (ResBlock, plus self-attention when `attention`; FQGAN's adapter is a stack of
 *   transformer blocks at the trunk's width), its own GroupNorm, swish and 3x3 conv_out to latentChannels, and then
 *   that sub-codebook's projection and quantizer.
 */
export type Factorization = 'projection' | 'branch';

/**
 * The older alignment, ours rather than FQGAN's: one sub-codebook's codes, mean-pooled through an MLP, matched to a
 * frozen teacher's image embedding by a symmetric (CLIP-style) InfoNCE. Kept so that configs using it load and
 * resume; new runs get it only from --align-weight. FQGAN's alignment is AlignTarget.
 */
export type AlignConfig = { subCodebook: number; teacherDim: number; weight: number; temperature: number };

/**
 * One FQGAN alignment target: sub-codebook `subCodebook`'s quantized codes go through a class-token transformer head
 * (alignHead.ts) of `layers` blocks with `heads` heads at width teacherDim, whose class token is matched to teacher
 * number `teacher`'s image embedding by FQGAN's one-directional InfoNCE on exp(cos), times `weight` (FQGAN 0.5).
 * `teacher` indexes the list of teachers given to training (--align k:DIR, in order).
 */
export type AlignTarget = { subCodebook: number; teacher: number; teacherDim: number; weight: number; layers: number; heads: number };

/** PatchGAN discriminator and when/how much its hinge loss enters the tokenizer's loss (used by the trainer). */
export type AdversarialConfig = { weight: number; startStep: number; baseChannels: number; layers: number };

/**
 * The whole tokenizer as plain data, version 2 (TOKENIZER_CONFIG_VERSION): what model code reads. Checkpoints keep
 * the config as it was written (an older one stays older on disk, and ids hash it as stored); loading passes it
 * through migrateTokenizerConfig (migrate.ts) first.
 * Downsampling factor is 2^(channelMult.length - 1): [1,2,2] -> 4, [1,1,2,2] -> 8.
 */
export type TokenizerConfig = {
  version: 2;
  imageSize: number;
  channels: 1 | 3;
  baseChannels: number;
  channelMult: number[];
  blocksPerLevel: number;
  /** self-attention block in the middle (lowest resolution) of encoder and decoder */
  attention: boolean;
  /** GroupNorm groups; every level's width must be divisible by it */
  normGroups: number;
  latentChannels: number;
  quantizer: QuantizerConfig;
  /** FQGAN alignment targets (class-token head, one-directional InfoNCE), possibly none; `align` is the older mean-pooled form */
  alignTargets: AlignTarget[];
  /** see Factorization */
  factorize: Factorization;
  /** adapter blocks per branch when factorize = 'branch' (unused with 'projection') */
  branchBlocks: number;
  /** the older alignment; absent = none */
  align?: AlignConfig;
  /** weight of the teacher-feature perceptual loss (0 disables it) */
  perceptualWeight: number;
  /** the adversarial loss; absent = none */
  adversarial?: AdversarialConfig;
};

/**
 * A version-1 tokenizer config (no `version` field): every config written before version 2. Fields added over its
 * life were left out when they had their old meaning, so their absence means old behaviour (see
 * migrateTokenizerConfig); UniTok's projection was the flag quantProj 'attn' across kinds 'vq' and 'fq'.
 */
export type TokenizerConfigV1 = Omit<TokenizerConfig, 'version' | 'quantizer' | 'alignTargets' | 'factorize' | 'branchBlocks'> & {
  version?: 1;
  quantizer: Omit<QuantizerConfig, 'kind' | 'entropyLogits' | 'disentangleOn' | 'lossOverK' | 'attention'> & {
    kind: 'vq' | 'fq';
    entropyLogits?: 'cosine' | 'sq-dist';
    disentangleOn?: 'quantized' | 'pre';
    lossOverK?: 'sum' | 'mean';
  };
  alignTargets?: AlignTarget[];
  factorize?: Factorization;
  branchBlocks?: number;
  quantProj?: 'linear' | 'attn';
  attnProjAttention?: 'causal' | 'bidirectional';
};

/** Any tokenizer config a checkpoint may hold (what loading and createTokenizer accept). */
export type StoredTokenizerConfig = TokenizerConfig | TokenizerConfigV1;

const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const isNonNeg = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isPos = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/**
 * Every problem with `cfg` as one short sentence each (empty when valid). Accepts unknown input
 * (a parsed JSON file) so that the CLI can report all mistakes at once. A config of an older version is checked as
 * migrateTokenizerConfig turns it into the current one.
 */
export function configErrors(cfg: unknown): string[] {
  const errs: string[] = [];
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) return ['config must be an object'];
  const c = migrateTokenizerConfig(cfg) as Record<string, unknown>;
  if (c.version !== TOKENIZER_CONFIG_VERSION) {
    errs.push(`version must be 1 (or absent) or ${TOKENIZER_CONFIG_VERSION}; this factorgen reads no other (got ${show(c.version)})`);
    return errs;
  }
  if (!isPosInt(c.imageSize)) errs.push(`imageSize must be a positive integer (got ${show(c.imageSize)})`);
  if (c.channels !== 1 && c.channels !== 3) errs.push(`channels must be 1 or 3 (got ${show(c.channels)})`);
  if (!isPosInt(c.baseChannels)) errs.push(`baseChannels must be a positive integer (got ${show(c.baseChannels)})`);
  const mult = c.channelMult;
  const multOk = Array.isArray(mult) && mult.length > 0 && mult.every(isPosInt);
  if (!multOk) errs.push(`channelMult must be a non-empty array of positive integers (got ${show(mult)})`);
  if (!isPosInt(c.blocksPerLevel)) errs.push(`blocksPerLevel must be a positive integer (got ${show(c.blocksPerLevel)})`);
  if (typeof c.attention !== 'boolean') errs.push(`attention must be true or false (got ${show(c.attention)})`);
  if (!isPosInt(c.normGroups)) errs.push(`normGroups must be a positive integer (got ${show(c.normGroups)})`);
  if (!isPosInt(c.latentChannels)) errs.push(`latentChannels must be a positive integer (got ${show(c.latentChannels)})`);
  if (multOk && isPosInt(c.imageSize)) {
    const f = 2 ** ((mult as number[]).length - 1);
    if (c.imageSize % f !== 0) errs.push(`imageSize ${c.imageSize} is not divisible by the downsampling factor ${f} of channelMult ${show(mult)}`);
  }
  if (multOk && isPosInt(c.baseChannels) && isPosInt(c.normGroups)) {
    for (const m of mult as number[]) {
      const w = (c.baseChannels as number) * m;
      if (w % (c.normGroups as number) !== 0) errs.push(`level width ${w} (baseChannels*${m}) is not divisible by normGroups ${c.normGroups}`);
    }
  }
  if (c.factorize !== 'projection' && c.factorize !== 'branch') {
    errs.push(`factorize must be "projection" or "branch" (got ${show(c.factorize)})`);
  }
  if (!(typeof c.branchBlocks === 'number' && Number.isInteger(c.branchBlocks) && c.branchBlocks >= 0)) {
    errs.push(`branchBlocks must be an integer >= 0 (got ${show(c.branchBlocks)})`);
  }
  // Version-1 fields that migration leaves in place only when their value was invalid, or in a version-2 config.
  if (c.quantProj !== undefined) {
    errs.push(c.quantProj === 'linear' || c.quantProj === 'attn' ? 'quantProj is a version-1 field (version 2 writes "attn" as quantizer.kind "unitok")' : `quantProj must be "linear" or "attn" (got ${show(c.quantProj)})`);
  }
  if (c.attnProjAttention !== undefined) {
    errs.push(c.attnProjAttention === 'causal' || c.attnProjAttention === 'bidirectional' ? 'attnProjAttention is a version-1 field (version 2 writes it as quantizer.attention)' : `attnProjAttention must be "causal" or "bidirectional" (got ${show(c.attnProjAttention)})`);
  }
  const unitok = (c.quantizer as { kind?: unknown } | null | undefined)?.kind === 'unitok';
  if (unitok && isPosInt(c.latentChannels)) {
    // UniTok's AttnProjection needs in and out widths that divide one another.
    const subs = (c.quantizer as { subCodebooks?: { dim?: unknown }[] } | undefined)?.subCodebooks;
    const dims = Array.isArray(subs) ? subs.map((s) => s?.dim).filter(isPosInt) : [];
    const total = dims.reduce((a, b) => a + b, 0);
    const divides = (a: number, b: number) => a % b === 0 || b % a === 0;
    const L = c.latentChannels as number;
    const bad = c.factorize === 'branch' ? dims.filter((d) => !divides(L, d)) : total > 0 && !divides(L, total) ? [total] : [];
    if (bad.length > 0 || (total > 0 && !divides(total, L))) {
      errs.push(`quantizer.kind "unitok" (the attention projection) needs latentChannels ${L} and the code widths (${c.factorize === 'branch' ? dims.join(', ') : total}, and their sum ${total}) to divide one another`);
    }
  }
  // Sane limits, so that a corrupt or crafted config is refused before anything is allocated (a tokenizer's images,
  // activations and codebooks grow with these; the largest presets use a fraction of them).
  const limits: [string, unknown, number][] = [
    ['imageSize', c.imageSize, 4096],
    ['baseChannels', c.baseChannels, 4096],
    ['blocksPerLevel', c.blocksPerLevel, 64],
    ['latentChannels', c.latentChannels, 8192],
    ['branchBlocks', c.branchBlocks, 64],
  ];
  for (const [name, v, max] of limits) if (typeof v === 'number' && v > max) errs.push(`${name} ${v} is over the limit ${max}`);
  if (multOk && (mult as number[]).length > 12) errs.push(`channelMult has ${(mult as number[]).length} levels, over the limit 12`);
  if (multOk && isPosInt(c.baseChannels) && (mult as number[]).some((m) => m * (c.baseChannels as number) > 16384)) {
    errs.push(`channelMult ${show(mult)} times baseChannels ${c.baseChannels} makes a level wider than the limit 16384`);
  }
  const qq = c.quantizer as { subCodebooks?: unknown } | null | undefined;
  if (qq && Array.isArray(qq.subCodebooks)) {
    if (qq.subCodebooks.length > 64) errs.push(`quantizer.subCodebooks has ${qq.subCodebooks.length} entries, over the limit 64`);
    (qq.subCodebooks as { size?: unknown; dim?: unknown }[]).forEach((sc, i) => {
      if (typeof sc?.size === 'number' && sc.size > 2 ** 20) errs.push(`quantizer.subCodebooks[${i}].size ${sc.size} is over the limit ${2 ** 20}`);
      if (typeof sc?.dim === 'number' && sc.dim > 8192) errs.push(`quantizer.subCodebooks[${i}].dim ${sc.dim} is over the limit 8192`);
    });
  }
  if (!isNonNeg(c.perceptualWeight)) errs.push(`perceptualWeight must be a number >= 0 (got ${show(c.perceptualWeight)})`);

  const q = c.quantizer as Record<string, unknown> | undefined;
  let K = 0;
  if (typeof q !== 'object' || q === null) errs.push('quantizer must be an object');
  else {
    if (q.kind !== 'vq' && q.kind !== 'fq' && q.kind !== 'unitok') errs.push(`quantizer.kind must be "vq", "fq" or "unitok" (got ${show(q.kind)})`);
    const subs = q.subCodebooks;
    if (!Array.isArray(subs) || subs.length === 0) errs.push(`quantizer.subCodebooks must be a non-empty array (got ${show(subs)})`);
    else {
      K = subs.length;
      subs.forEach((s: { size?: unknown; dim?: unknown } | null, i) => {
        if (!isPosInt(s?.size) || (s.size as number) < 2) errs.push(`quantizer.subCodebooks[${i}].size must be an integer >= 2 (got ${show(s?.size)})`);
        if (!isPosInt(s?.dim)) errs.push(`quantizer.subCodebooks[${i}].dim must be a positive integer (got ${show(s?.dim)})`);
      });
      if (q.kind === 'vq' && K !== 1) errs.push(`quantizer.kind "vq" needs exactly one sub-codebook (got ${K})`);
      if (q.disentangleWeight !== 0 && isNonNeg(q.disentangleWeight)) {
        if (K < 2) errs.push('quantizer.disentangleWeight must be 0 with a single codebook');
        else {
          const dims = subs.map((s: { dim?: unknown }) => s?.dim);
          if (new Set(dims).size === dims.length) errs.push(`quantizer.disentangleWeight > 0 needs at least two sub-codebooks of equal dim (dims ${show(dims)})`);
        }
      }
    }
    if (!isNonNeg(q.beta)) errs.push(`quantizer.beta must be a number >= 0 (got ${show(q.beta)})`);
    if (!isNonNeg(q.entropyWeight)) errs.push(`quantizer.entropyWeight must be a number >= 0 (got ${show(q.entropyWeight)})`);
    if (!isPos(q.entropyTemperature)) errs.push(`quantizer.entropyTemperature must be a number > 0 (got ${show(q.entropyTemperature)})`);
    if (!isNonNeg(q.disentangleWeight)) errs.push(`quantizer.disentangleWeight must be a number >= 0 (got ${show(q.disentangleWeight)})`);
    if (q.entropyLogits !== 'cosine' && q.entropyLogits !== 'sq-dist') {
      errs.push(`quantizer.entropyLogits must be "cosine" or "sq-dist" (got ${show(q.entropyLogits)})`);
    }
    if (q.lossOverK !== 'sum' && q.lossOverK !== 'mean') {
      errs.push(`quantizer.lossOverK must be "sum" or "mean" (got ${show(q.lossOverK)})`);
    }
    if (q.disentangleOn !== 'quantized' && q.disentangleOn !== 'pre') {
      errs.push(`quantizer.disentangleOn must be "quantized" or "pre" (got ${show(q.disentangleOn)})`);
    }
    if (q.kind === 'unitok' && q.attention !== 'causal' && q.attention !== 'bidirectional') {
      errs.push(`quantizer.attention must be "causal" or "bidirectional" with kind "unitok" (got ${show(q.attention)})`);
    }
    if (q.kind !== 'unitok' && q.attention !== undefined) errs.push(`quantizer.attention is only for kind "unitok" (got ${show(q.attention)} with kind ${show(q.kind)})`);
  }

  if (c.align !== undefined) {
    const a = c.align as Record<string, unknown> | null;
    if (typeof a !== 'object' || a === null) errs.push('align must be an object when present');
    else {
      if (!(typeof a.subCodebook === 'number' && Number.isInteger(a.subCodebook) && a.subCodebook >= 0 && (K === 0 || a.subCodebook < K))) {
        errs.push(`align.subCodebook must index one of the ${K} sub-codebooks (got ${show(a.subCodebook)})`);
      }
      if (!isPosInt(a.teacherDim)) errs.push(`align.teacherDim must be a positive integer (got ${show(a.teacherDim)})`);
      if (!isNonNeg(a.weight)) errs.push(`align.weight must be a number >= 0 (got ${show(a.weight)})`);
      if (!isPos(a.temperature)) errs.push(`align.temperature must be a number > 0 (got ${show(a.temperature)})`);
    }
  }
  {
    if (!Array.isArray(c.alignTargets)) errs.push(`alignTargets must be an array (got ${show(c.alignTargets)})`);
    else {
      (c.alignTargets as Record<string, unknown>[]).forEach((t, i) => {
        const w = `alignTargets[${i}]`;
        if (typeof t !== 'object' || t === null) return void errs.push(`${w} must be an object`);
        if (!(typeof t.subCodebook === 'number' && Number.isInteger(t.subCodebook) && t.subCodebook >= 0 && (K === 0 || t.subCodebook < K))) {
          errs.push(`${w}.subCodebook must index one of the ${K} sub-codebooks (got ${show(t.subCodebook)})`);
        }
        if (!(typeof t.teacher === 'number' && Number.isInteger(t.teacher) && t.teacher >= 0)) errs.push(`${w}.teacher must be an integer >= 0 (got ${show(t.teacher)})`);
        if (!isPosInt(t.teacherDim)) errs.push(`${w}.teacherDim must be a positive integer (got ${show(t.teacherDim)})`);
        if (!isNonNeg(t.weight)) errs.push(`${w}.weight must be a number >= 0 (got ${show(t.weight)})`);
        if (!(typeof t.layers === 'number' && Number.isInteger(t.layers) && t.layers >= 0)) errs.push(`${w}.layers must be an integer >= 0 (got ${show(t.layers)})`);
        if (!isPosInt(t.heads)) errs.push(`${w}.heads must be a positive integer (got ${show(t.heads)})`);
        else if (isPosInt(t.teacherDim) && t.teacherDim % t.heads !== 0) errs.push(`${w}: teacherDim ${t.teacherDim} is not divisible by heads ${t.heads}`);
      });
    }
  }
  if (c.adversarial !== undefined) {
    const d = c.adversarial as Record<string, unknown> | null;
    if (typeof d !== 'object' || d === null) errs.push('adversarial must be an object when present');
    else {
      if (!isNonNeg(d.weight)) errs.push(`adversarial.weight must be a number >= 0 (got ${show(d.weight)})`);
      if (!(typeof d.startStep === 'number' && Number.isInteger(d.startStep) && d.startStep >= 0)) errs.push(`adversarial.startStep must be an integer >= 0 (got ${show(d.startStep)})`);
      if (!isPosInt(d.baseChannels)) errs.push(`adversarial.baseChannels must be a positive integer (got ${show(d.baseChannels)})`);
      if (!isPosInt(d.layers)) errs.push(`adversarial.layers must be a positive integer (got ${show(d.layers)})`);
    }
  }
  return errs;
}

/** Throws one UserError line "`where`: err1; err2" unless `cfg` is a valid config of any version (see configErrors). */
export function assertValidConfig(cfg: unknown, where = 'tokenizer config'): asserts cfg is StoredTokenizerConfig {
  const errs = configErrors(cfg);
  if (errs.length > 0) throw new UserError(`${where}: ${errs.join('; ')}`);
}

/**
 * A stored config (any version, e.g. a checkpoint's config.json) as the current TokenizerConfig: migrated
 * (migrateTokenizerConfig), then validated. Throws one UserError line "`where`: err1; err2" when it is invalid.
 * The result is a new object; `raw` is not changed (ids hash `raw`).
 */
export function currentConfig(raw: unknown, where = 'tokenizer config'): TokenizerConfig {
  assertValidConfig(raw, where);
  return migrateTokenizerConfig(raw) as TokenizerConfig;
}

/** Downsampling factor 2^(levels-1). */
export function downFactor(cfg: TokenizerConfig): number {
  return 2 ** (cfg.channelMult.length - 1);
}

/** Side of the token grid: imageSize / downFactor (28 with [1,2,2] -> 7). */
export function gridSize(cfg: TokenizerConfig): number {
  return cfg.imageSize / downFactor(cfg);
}

/** Total dimension of the concatenated sub-codes (sum of d_k). */
export function codeDim(cfg: TokenizerConfig): number {
  return cfg.quantizer.subCodebooks.reduce((a, s) => a + s.dim, 0);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = canonical(x);
    }
    return out;
  }
  return v;
}

/**
 * Stable 16-hex-digit hash of a config as given (key order and undefined fields do not matter). Token files record
 * the hash of the config as stored (Tokenizer.stored), so a migrated config hashes as its checkpoint does.
 */
export function configHash(cfg: unknown): string {
  return new Sha256().update(JSON.stringify(canonical(cfg))).hex().slice(0, 16);
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

/** The temperature on cosine logits that gives the configured entropy loss ('sq-dist' at T = 'cosine' at T/2). */
export function cosineEntropyTemperature(q: QuantizerConfig): number {
  return q.entropyLogits === 'sq-dist' ? q.entropyTemperature / 2 : q.entropyTemperature;
}

/** Sub-codebooks get their own encoder branch (FQGAN) rather than a projection of one shared latent. */
export function isBranched(cfg: TokenizerConfig): boolean {
  return cfg.factorize === 'branch';
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
