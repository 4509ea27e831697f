import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadCheckpoint } from '@factorgen/io';
import { resolveCheckpointDir } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import type { Tokenizer } from '@factorgen/tokenizer';
import { tokenizerFromCheckpoint } from '@factorgen/tokenizer';

/** A tokenizer restored from a checkpoint, with its identity (hash of config and weights). */
export type LoadedTokenizer = { tok: Tokenizer; id: string; dir: string };

/** Loads a tokenizer from a run folder or checkpoint folder; every name and shape is validated. */
export async function loadTokenizer(dir: string): Promise<LoadedTokenizer> {
  const ckDir = resolveCheckpointDir(dir);
  const ck = await loadCheckpoint(ckDir, 'tokenizer');
  return { ...tokenizerFromCheckpoint(ck, ckDir), dir: ckDir };
}

/**
 * The one-line error for a command run without --tokenizer whose file (a token file, a generator's config.json)
 * records a tokenizer path that is gone: it names the flag to pass, the file that recorded the path, and the path.
 * `alsoTried` lists other places looked at, if any.
 */
export function missingRecordedTokenizer(recorded: string, recordedIn: string, alsoTried: string[] = []): UserError {
  const nor = alsoTried.length ? `, nor ${alsoTried.join(', ')}` : '';
  return new UserError(`not given, and the tokenizer recorded in ${recordedIn} (${recorded}) was not found${nor}; pass \`tokenizer\` DIR`, { field: 'tokenizer' });
}

/**
 * Where a path recorded in a file may be: absolute as recorded; relative, first against the folder of the file that
 * records it (so a run folder moved whole keeps working whatever the working directory), then against the working
 * directory (how factorgen records paths today: the shipped generator records pretrained/tokenizer from the
 * repository root).
 */
export function recordedPathCandidates(recorded: string, recordedIn: string): string[] {
  if (!recorded) return [];
  if (path.isAbsolute(recorded)) return [recorded];
  const besideFile = path.join(path.dirname(recordedIn), recorded);
  return besideFile === path.normalize(recorded) ? [recorded] : [besideFile, recorded];
}

/** The tokenizer folder `recordedIn` recorded, for a command run without --tokenizer; missingRecordedTokenizer when it is gone. */
export function recordedTokenizerDir(recorded: string, recordedIn: string): string {
  for (const c of recordedPathCandidates(recorded, recordedIn)) if (fs.existsSync(c)) return c;
  throw missingRecordedTokenizer(recorded, recordedIn);
}
