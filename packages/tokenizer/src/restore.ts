import { assignParams, preferEma, Sha256, type LoadedCheckpoint } from '@factorgen/shared';
import { type TokenizerConfig, assertValidConfig } from './config';
import { createTokenizer, type Tokenizer } from './model';

/** Parameter-name prefix of the PatchGAN discriminator inside a tokenizer checkpoint (training state only). */
export const DISC_PREFIX = 'disc/';
/**
 * Tensor-name prefix of other training state in a tokenizer checkpoint (not model parameters): the code-usage
 * window that dead-code restarts read, so that a resumed run restarts the same codes as an uninterrupted one.
 */
export const STATE_PREFIX = 'state/';

/**
 * Identity of a tokenizer checkpoint: sha256 of its config and every weight (name, shape, bytes), 16 hex chars.
 * Weights are taken as used (preferEma: EMA averages in place of the raw weights, the ema/ copies left out), so a run
 * with EMA and its export have the same id; for checkpoints without EMA this is every tensor, as it always was.
 */
export function tokenizerIdOf(ck: LoadedCheckpoint): string {
  const h = new Sha256();
  h.update(JSON.stringify(ck.config));
  const tensors = preferEma(ck.tensors);
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    h.update(name);
    h.update(JSON.stringify(t.shape));
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.hex().slice(0, 16);
}

/**
 * Builds a tokenizer from a parsed checkpoint (no files: the CLI reads folders, the web page fetches) and computes
 * its id. Every name and shape is validated; `where` names the checkpoint in errors. The caller owns tok.params.
 */
export function tokenizerFromCheckpoint(ck: LoadedCheckpoint, where: string): { tok: Tokenizer; id: string } {
  const config = ck.config as TokenizerConfig;
  assertValidConfig(config, `${where}/config.json`);
  const tok = createTokenizer(config, 'load');
  // A checkpoint may also hold the discriminator and the code-usage window: training state, not the model.
  // With EMA the averaged weights are the model (encoding, decoding, export).
  const modelTensors = new Map([...preferEma(ck.tensors)].filter(([name]) => !name.startsWith(DISC_PREFIX) && !name.startsWith(STATE_PREFIX)));
  try {
    assignParams(tok.params.vars, modelTensors, where);
  } catch (e) {
    tok.params.dispose();
    throw e;
  }
  return { tok, id: tokenizerIdOf(ck) };
}
