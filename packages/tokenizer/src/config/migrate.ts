/** The tokenizer config version this code writes (TokenizerConfig); migrateTokenizerConfig brings older ones to it. */
export const TOKENIZER_CONFIG_VERSION = 2;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Any stored tokenizer config -> the current version (TOKENIZER_CONFIG_VERSION), as a new object; `raw` is not
 * changed. Version 1 is every config without a `version` field (or with version 1). Its fields added over time were
 * left out when they had their old meaning, and migration writes that meaning out:
 * - factorize absent -> 'projection'; branchBlocks absent -> 1; alignTargets absent -> [];
 * - quantizer.entropyLogits absent -> 'cosine'; quantizer.disentangleOn absent -> 'pre'; quantizer.lossOverK absent -> 'sum';
 * - quantProj 'attn' (UniTok's attention projection, a flag across kinds 'vq' and 'fq') -> quantizer.kind 'unitok' with
 *   quantizer.attention = attnProjAttention, absent -> 'causal' (UniTok's first release); quantProj 'linear' dropped;
 *   attnProjAttention dropped without quantProj 'attn' (it had no effect there).
 * Invalid values are kept under their own names, so that configErrors names them. Not an object, or a version this code
 * does not know: returned as it is (configErrors says why). Does not validate: see currentConfig.
 */
export function migrateTokenizerConfig(raw: unknown): unknown {
  if (!isObj(raw)) return raw;
  if (raw.version !== undefined && raw.version !== 1) return raw;
  const { quantProj, attnProjAttention, version: _v1, ...rest } = raw;
  const out: Obj = {
    version: TOKENIZER_CONFIG_VERSION,
    ...rest,
    factorize: raw.factorize ?? 'projection',
    branchBlocks: raw.branchBlocks ?? 1,
    alignTargets: raw.alignTargets ?? [],
  };
  const attn = quantProj === 'attn';
  const q = raw.quantizer;
  if (isObj(q)) {
    const kindOk = q.kind === 'vq' || q.kind === 'fq';
    out.quantizer = {
      ...q,
      entropyLogits: q.entropyLogits ?? 'cosine',
      disentangleOn: q.disentangleOn ?? 'pre',
      lossOverK: q.lossOverK ?? 'sum',
      ...(attn && kindOk ? { kind: 'unitok', attention: attnProjAttention ?? 'causal' } : {}),
    };
  }
  if (quantProj !== undefined && quantProj !== 'linear' && !attn) out.quantProj = quantProj;
  const attnOk = attnProjAttention === undefined || attnProjAttention === 'causal' || attnProjAttention === 'bidirectional';
  if (!attnOk && !attn) out.attnProjAttention = attnProjAttention;
  return out;
}
