import { check } from '@factorgen/tfjs-ext';
import { type ParamStore } from '@factorgen/nn';
import presetData from './presets.json' with { type: 'json' };

/** The generator config version this code writes (GeneratorConfig); migrateGeneratorConfig brings older ones to it. */
export const GENERATOR_CONFIG_VERSION = 2;

/**
 * Factorized autoregressive generator (FQGAN's FAR on a LlamaGen-style backbone), as plain data, version 2
 * (GENERATOR_CONFIG_VERSION; stored verbatim in checkpoints, read through migrateGeneratorConfig).
 *
 * Positional encoding (`rope`): '2d' is the default. The backbone sees a 2-D token grid in raster order; 2-D RoPE
 * (LlamaGen's c2i choice) rotates half of each head's channel pairs by the token's row and half by its column, so
 * a token's vertical neighbour (gridW steps back in raster order) is as "close" as its horizontal one. '1d' rotates
 * by the raster index instead. The class token's rotation is `classRope` (see backboneRope): 'identity' (unrotated
 * q and k; what new configs get, and what configs written before the field keep) or 'zero' (cos = sin = 0, as
 * LlamaGen's and FAR's code fill their cls_token_num rows). Identity is ours: in paired 150-step runs on the same
 * tokens it gave the lower validation loss at both seeds tried (README method notes).
 * The head's K slots use learned slot embeddings (K is tiny and every slot has its own output layer).
 */
export type GeneratorConfig = {
  version: 2;
  /** Token grid of one image: T = gridH * gridW positions in raster order. */
  gridH: number;
  gridW: number;
  /** V_k for each of the K sub-codebooks. */
  subCodebookSizes: number[];
  /** Real classes are [0, numClasses); index numClasses is the null class of classifier-free guidance. */
  numClasses: number;
  /** Backbone width, number of blocks, attention heads, SwiGLU hidden size. */
  width: number;
  depth: number;
  heads: number;
  mlpHidden: number;
  /** 'ar': a small causal transformer over the K sub-tokens of a position; 'parallel': K independent linear heads. */
  headMode: 'ar' | 'parallel';
  /** Blocks of the AR head (1..4); its width (<= width; h_t is projected when smaller), heads and SwiGLU hidden size. */
  headLayers: number;
  headWidth: number;
  headHeads: number;
  headMlpHidden: number;
  /** Dropout on embeddings and on each residual branch, training only. */
  dropout: number;
  rope: '1d' | '2d';
  /** Probability that a training label is replaced by the null class. */
  classDropout: number;
  /** The class token's rotary embedding (see backboneRope); version-1 configs without it had the identity. */
  classRope: 'identity' | 'zero';
};

/** A version-1 generator config (no `version`): every one written before version 2; classRope absent = 'identity'. */
export type GeneratorConfigV1 = Omit<GeneratorConfig, 'version' | 'classRope'> & { version?: 1; classRope?: 'identity' | 'zero' };

/** Any generator config a checkpoint may hold. */
export type StoredGeneratorConfig = GeneratorConfig | GeneratorConfigV1;

/**
 * Any stored generator config -> the current version, as a new object (`raw` is not changed). Version 1 (no
 * `version` field, or 1): classRope absent -> 'identity' (what configs written before the field were trained with).
 * Not an object, or a version this code does not know: returned as it is (validateGeneratorConfig says why).
 */
export function migrateGeneratorConfig(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const c = raw as Record<string, unknown>;
  if (c.version !== undefined && c.version !== 1) return raw;
  return { ...c, version: GENERATOR_CONFIG_VERSION, classRope: c.classRope ?? 'identity' };
}

/**
 * A stored generator config (any version) as the current GeneratorConfig: migrated, then validated (one-line
 * UserError naming the first invalid field). A new object; `raw` is not changed.
 */
export function currentGeneratorConfig(raw: StoredGeneratorConfig): GeneratorConfig {
  const cfg = migrateGeneratorConfig(raw) as GeneratorConfig;
  checkCurrent(cfg);
  return cfg;
}

/**
 * presets.json, typed: every generator default in one place. small7x7 is smallGenerator7x7; cli holds the defaults of
 * `factorgen generator train` (its own, smaller model: width 192, depth 6, 6 heads, SwiGLU hidden mlpHiddenPerWidth x
 * width) and its training flags. The PyTorch twin reads the same file.
 */
export const GENERATOR_PRESETS = presetData as {
  small7x7: GeneratorConfig;
  cli: {
    steps: number; batch: number; lr: number; warmup: number; minLrRatio: number; weightDecay: number; clip: number; seed: string; checkpointEvery: number;
    logEvery: number; ema: number; adamw: { beta1: number; beta2: number; eps: number }; width: number; depth: number; heads: number; mlpHiddenPerWidth: number;
    headMode: 'ar' | 'parallel'; headLayers: number; dropout: number; classDropout: number; rope: '1d' | '2d'; classRope: 'identity' | 'zero';
    valEvery: number; valLimit: number;
  };
};

/**
 * A small preset for 7x7 token grids with two 1024-entry sub-codebooks (10.5 M parameters). Its head has 3 blocks,
 * as FAR-L (FAR's default is 4), which the CLI's --head-layers default also is: in 150-step paired runs 3 blocks gave
 * the lowest validation loss of 1, 2 and 3 (README method notes).
 */
export const smallGenerator7x7: GeneratorConfig = GENERATOR_PRESETS.small7x7;

/** The preset with `overrides` applied, validated. */
export function makeGeneratorConfig(overrides: Partial<GeneratorConfig> = {}): GeneratorConfig {
  const cfg = { ...smallGenerator7x7, subCodebookSizes: [...smallGenerator7x7.subCodebookSizes], ...overrides };
  validateGeneratorConfig(cfg);
  return cfg;
}

const isPosInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1;

/** Throws a one-line UserError naming the first invalid field of `cfg` (any version, checked as migrated). */
export function validateGeneratorConfig(cfg: StoredGeneratorConfig): void {
  currentGeneratorConfig(cfg);
}

function checkCurrent(cfg: GeneratorConfig): void {
  const what = 'generator config';
  check(typeof cfg === 'object' && cfg !== null, what, 'config must be an object');
  check(cfg.version === GENERATOR_CONFIG_VERSION, what, `version must be 1 (or absent) or ${GENERATOR_CONFIG_VERSION}; this factorgen reads no other (got ${JSON.stringify(cfg.version)})`);
  for (const f of ['gridH', 'gridW', 'numClasses', 'width', 'depth', 'heads', 'mlpHidden'] as const) {
    check(isPosInt(cfg[f]), what, `${f} must be a positive integer (got ${String(cfg[f])})`);
  }
  check(cfg.gridH * cfg.gridW >= 1, what, 'the grid must have at least one position');
  // Sane limits, checked before anything is allocated: a corrupt or crafted config.json must not make a load grow
  // without bound (the weights file bounds the parameters, these bound the rest: caches, masks, positions).
  const limits = { gridH: 256, gridW: 256, numClasses: 1_000_000, width: 16384, depth: 512, heads: 1024, mlpHidden: 65536 } as const;
  for (const [f, max] of Object.entries(limits) as [keyof typeof limits, number][]) {
    check(cfg[f] <= max, what, `${f} ${cfg[f]} is over the limit ${max}`);
  }
  check(cfg.gridH * cfg.gridW <= 4096, what, `the grid ${cfg.gridH}x${cfg.gridW} has more than 4096 positions`);

  check(
    Array.isArray(cfg.subCodebookSizes) && cfg.subCodebookSizes.length >= 1,
    what,
    'subCodebookSizes must list at least one sub-codebook size',
  );
  for (const v of cfg.subCodebookSizes) check(isPosInt(v) && v >= 2, what, `every sub-codebook size must be an integer >= 2 (got ${v})`);
  check(cfg.subCodebookSizes.length <= 64, what, `subCodebookSizes lists ${cfg.subCodebookSizes.length} sub-codebooks, over the limit 64`);
  for (const v of cfg.subCodebookSizes) check(v <= 2 ** 20, what, `sub-codebook size ${v} is over the limit ${2 ** 20}`);
  check(cfg.width >= cfg.subCodebookSizes.length, what, `width (${cfg.width}) must be at least the number of sub-codebooks`);
  check(cfg.width % cfg.heads === 0, what, `heads (${cfg.heads}) must divide width (${cfg.width})`);
  const dh = cfg.width / cfg.heads;
  check(cfg.rope === '1d' || cfg.rope === '2d', what, `rope must be '1d' or '2d' (got ${String(cfg.rope)})`);
  if (cfg.rope === '2d') check(dh % 4 === 0, what, `2-D RoPE needs width/heads divisible by 4 (got ${dh})`);
  else check(dh % 2 === 0, what, `1-D RoPE needs an even width/heads (got ${dh})`);
  check(cfg.headMode === 'ar' || cfg.headMode === 'parallel', what, `headMode must be 'ar' or 'parallel' (got ${String(cfg.headMode)})`);
  check(isPosInt(cfg.headLayers) && cfg.headLayers <= 4, what, `headLayers must be an integer in 1..4 (got ${cfg.headLayers})`);
  for (const f of ['headWidth', 'headHeads', 'headMlpHidden'] as const) {
    check(isPosInt(cfg[f]), what, `${f} must be a positive integer (got ${String(cfg[f])})`);
  }
  check(cfg.headMlpHidden <= 65536 && cfg.headHeads <= 1024, what, `headMlpHidden (${cfg.headMlpHidden}) or headHeads (${cfg.headHeads}) is over its limit (65536, 1024)`);
  check(cfg.headWidth <= cfg.width, what, `headWidth (${cfg.headWidth}) must not exceed width (${cfg.width})`);
  check(cfg.headWidth % cfg.headHeads === 0, what, `headHeads (${cfg.headHeads}) must divide headWidth (${cfg.headWidth})`);
  check(cfg.dropout >= 0 && cfg.dropout < 1, what, `dropout must be in [0, 1) (got ${cfg.dropout})`);
  check(cfg.classDropout >= 0 && cfg.classDropout < 1, what, `classDropout must be in [0, 1) (got ${cfg.classDropout})`);
  check(cfg.classRope === 'identity' || cfg.classRope === 'zero', what, `classRope must be 'identity' or 'zero' (got ${String(cfg.classRope)})`);
}

/** T: positions per image. */
export function seqLen(cfg: GeneratorConfig): number {
  return cfg.gridH * cfg.gridW;
}

/** A generator: its config and its named parameters (the checkpoint is exactly these two). */
export type Generator = { cfg: GeneratorConfig; params: ParamStore };
