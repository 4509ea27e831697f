import { loadCheckpoint, resolveCheckpointDir } from '@factorgen/shared';
import type { Tokenizer } from './model';
import { tokenizerFromCheckpoint } from './restore';

/** A tokenizer restored from a checkpoint, with its identity (hash of config and weights). */
export type LoadedTokenizer = { tok: Tokenizer; id: string; dir: string };

/** Loads a tokenizer from a run folder or checkpoint folder; every name and shape is validated. */
export async function loadTokenizer(dir: string): Promise<LoadedTokenizer> {
  const ckDir = resolveCheckpointDir(dir);
  const ck = await loadCheckpoint(ckDir, 'tokenizer');
  return { ...tokenizerFromCheckpoint(ck, ckDir), dir: ckDir };
}
