import { assignParams, type LoadedCheckpoint, type LoadedTensor, LEGACY_CHECKPOINT_FORMAT, MODEL_FILE, Sha256 } from '@factorgen/formats';
import { preferEma } from '@factorgen/nn';
import { UserError } from '@factorgen/tfjs-ext';
import { assertValidConfig } from './config/validate';
import { createTokenizer, type Tokenizer } from './model';

/** Parameter-name prefix of the PatchGAN discriminator inside a tokenizer checkpoint (training state only). */
export const DISC_PREFIX = 'disc/';
/**
 * Tensor-name prefix of other training state in a tokenizer checkpoint (not model parameters): the code-usage
 * window that dead-code restarts read, so that a resumed run restarts the same codes as an uninterrupted one.
 */
export const STATE_PREFIX = 'state/';

/** Tensor-name prefix of the alignment heads (a training loss's heads; encoding and decoding do not use them). */
export const ALIGN_PREFIX = 'align/';

/** Prefixes of the tensors only training reads: discriminator, code-usage window, alignment heads. */
export const TRAINING_ONLY_PREFIXES: readonly string[] = [DISC_PREFIX, STATE_PREFIX, ALIGN_PREFIX];

/** Whether a tensor of a tokenizer checkpoint is training state, not needed to encode or decode. */
export const isTrainingOnlyTensor = (name: string): boolean => TRAINING_ONLY_PREFIXES.some((p) => name.startsWith(p));

/**
 * The tensors encoding and decoding use: EMA averages in place of the raw weights (preferEma), without the
 * training-only ones (isTrainingOnlyTensor). What `factorgen export` writes and what loading assigns.
 */
export function inferenceTensors<T>(tensors: Map<string, T>): Map<string, T> {
  return new Map([...preferEma(tensors)].filter(([name]) => !isTrainingOnlyTensor(name)));
}

/**
 * What an export of a tokenizer records in `extra.exported`: the id of the checkpoint it was exported from (an id
 * covers the training-only tensors, which the export leaves out, so it cannot be recomputed from the export) and the
 * digest of what the export holds, by the same formula, so a changed export no longer claims that id.
 */
export type TokenizerExportRecord = { tokenizerId: string; weightsDigest: string };

/** sha256 of a config and tensors (name, shape, bytes in name order), 16 hex chars: the id formula. */
function digestOf(config: unknown, tensors: Map<string, LoadedTensor>): string {
  const h = new Sha256();
  h.update(JSON.stringify(config));
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    h.update(name);
    h.update(JSON.stringify(t.shape));
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.hex().slice(0, 16);
}

/** The export record of a checkpoint, or undefined when it has none (a training checkpoint, an older export). */
export function exportRecordOf(ck: LoadedCheckpoint): TokenizerExportRecord | undefined {
  const r = (ck.extra as { exported?: unknown } | undefined)?.exported;
  if (typeof r !== 'object' || r === null) return undefined;
  const { tokenizerId, weightsDigest } = r as Record<string, unknown>;
  return typeof tokenizerId === 'string' && typeof weightsDigest === 'string' ? { tokenizerId, weightsDigest } : undefined;
}

/**
 * Identity of a tokenizer checkpoint: sha256 of its config and every weight (name, shape, bytes), 16 hex chars.
 * Weights are taken as used (preferEma: EMA averages in place of the raw weights, the ema/ copies left out), so a run
 * with EMA and its export have the same id; for checkpoints without EMA this is every tensor, as it always was.
 * An export (tokenizerExport) holds only the inference tensors and records the id of what it was exported
 * from: its id is that recorded id while its config and tensors still have the recorded digest; otherwise (edited
 * after export) the digest of what it holds.
 */
export function tokenizerIdOf(ck: LoadedCheckpoint): string {
  const own = digestOf(ck.config, preferEma(ck.tensors));
  const rec = exportRecordOf(ck);
  return rec && rec.weightsDigest === own ? rec.tokenizerId : own;
}

/**
 * The inference-only copy of a tokenizer checkpoint that `factorgen export` writes: the inference tensors and, in
 * `extra.exported`, the source's id and the copy's digest (so token files and generators that recorded the source's
 * id keep matching). The tensors are shared with `ck`, not copied.
 */
export function tokenizerExport(ck: LoadedCheckpoint): { tensors: Map<string, LoadedTensor>; extra: Record<string, unknown> } {
  const tensors = inferenceTensors(ck.tensors);
  const exported: TokenizerExportRecord = { tokenizerId: tokenizerIdOf(ck), weightsDigest: digestOf(ck.config, tensors) };
  return { tensors, extra: { ...(ck.extra ?? {}), exported } };
}

/**
 * Builds a tokenizer from a parsed checkpoint (no files: the CLI reads folders, the web page fetches) and computes
 * its id. Every name and shape is validated; `where` names the checkpoint in errors. The caller owns tok.params.
 */
export function tokenizerFromCheckpoint(ck: LoadedCheckpoint, where: string): { tok: Tokenizer; id: string } {
  // Any version: createTokenizer migrates it; the id hashes it as stored.
  const config: unknown = ck.config;
  assertValidConfig(config, `${where}/config.json`);
  // Built without the alignment heads, and given only the inference tensors: a training checkpoint and its export
  // load alike. With EMA the averaged weights are the model.
  const modelTensors = inferenceTensors(ck.tensors);
  // NaN or Infinity in a weight makes every code's distance NaN: encode would write token 0 everywhere and
  // reconstruct would report a PSNR of garbage. Refused at load, naming the first tensor (the generator's sampler
  // refuses a NaN logit likewise).
  for (const [name, t] of modelTensors) {
    let bad = 0;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) bad++;
    if (bad > 0) {
      throw new UserError(`${where}: ${ck.format === LEGACY_CHECKPOINT_FORMAT ? 'weights.bin' : MODEL_FILE}: ${name} holds ${bad} NaN or infinite value${bad > 1 ? 's' : ''} (of ${t.data.length}); the checkpoint is broken (a diverged run, or a damaged file)`);
    }
  }
  // Built against the checkpoint's tensors: a parameter it lacks, or holds in another shape, is listed, not allocated.
  const tok = createTokenizer(config, 'load', { alignHeads: false, budget: { shapes: modelTensors, where } });
  try {
    assignParams(tok.params.vars, modelTensors, where);
  } catch (e) {
    tok.params.dispose();
    throw e;
  }
  return { tok, id: tokenizerIdOf(ck) };
}
