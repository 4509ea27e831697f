import { Sha256 } from '@factorgen/formats';

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

/** The temperature on cosine logits that gives the configured entropy loss ('sq-dist' at T = 'cosine' at T/2). */
export function cosineEntropyTemperature(q: QuantizerConfig): number {
  return q.entropyLogits === 'sq-dist' ? q.entropyTemperature / 2 : q.entropyTemperature;
}

/** Sub-codebooks get their own encoder branch (FQGAN) rather than a projection of one shared latent. */
export function isBranched(cfg: TokenizerConfig): boolean {
  return cfg.factorize === 'branch';
}
