import { classFolderFile, openOutputDir, readTokenFile, writeClassFolders, writeManifest } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { decodeToImages } from '@factorgen/tokenizer';
import { loadTokenizer, recordedTokenizerDir } from './loadTokenizer';

export type DecodeRequest = {
  /** A token file written by encodeToTokenFile. */
  tokens: string;
  /** Tokenizer folder (default: the one recorded in the token file). */
  tokenizer?: string;
  /** Folder for <index>-<slug>/NNNN.png. */
  out: string;
  /** Decode only the first n records (default: all). */
  limit?: number;
  batch: number;
  /** Replace earlier decoded images in `out` (only the files factorgen wrote there). */
  overwrite?: boolean;
};

/**
 * Decodes a token file to PNGs in class folders (OUT/<index>-<slug>/NNNN.png, numbered per class in file order).
 * The tokenizer must be the one that wrote the file (same id). Errors: UserError on `tokens`, `tokenizer`, `out`.
 */
export async function decodeTokenFile(req: DecodeRequest): Promise<{ out: string; images: number }> {
  const set = readTokenFile(req.tokens);
  const tokDir = req.tokenizer ?? recordedTokenizerDir(set.header.tokenizerPath, req.tokens);
  const lock = openOutputDir(req.out, 'out', 'decoded tokens', 'tokenizer decode', { overwrite: req.overwrite });
  let tok: Awaited<ReturnType<typeof loadTokenizer>>['tok'] | undefined;
  try {
    const loaded = await loadTokenizer(tokDir);
    tok = loaded.tok;
    const id = loaded.id;
    if (id !== set.header.tokenizerId) {
      throw new UserError(`written by tokenizer ${set.header.tokenizerId}, but ${tokDir} is ${id}`, { field: 'tokens', value: req.tokens });
    }
    const n = Math.min(req.limit ?? set.header.count, set.header.count);
    const T = set.header.gridH * set.header.gridW * set.header.subCodebookSizes.length;
    const pixels = await decodeToImages(tok, set.tokens.subarray(0, n * T), n, req.batch);
    const { imageSize: S, channels: C } = tok.cfg;
    const counters = new Map<number, number>();
    const planned = Array.from(set.labels.subarray(0, n), (c) => {
      const index = counters.get(c) ?? 0;
      counters.set(c, index + 1);
      return classFolderFile(c, set.header.classNames[c], index);
    });
    writeManifest(req.out, 'decoded tokens', planned);
    await writeClassFolders(req.out, pixels, set.labels.subarray(0, n), set.header.classNames, S, S, C);
    return { out: req.out, images: n };
  } finally {
    tok?.params.dispose();
    lock.release();
  }
}
