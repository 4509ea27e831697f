import { UserError } from '@factorgen/tfjs-ext';
import type { StoredTokenizerConfig, TokenizerConfig } from './schema';
import { migrateTokenizerConfig, TOKENIZER_CONFIG_VERSION } from './migrate';

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
