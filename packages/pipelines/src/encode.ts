import * as path from 'node:path';
import { checkOutputFile, makeFolders, pendingOutputFile, tokenDtype, TOKEN_FILE_MAGIC, writeTokenFile } from '@factorgen/io';
import { classBalancedRows } from '@factorgen/formats';
import { configHash, encodeImages, gridSize } from '@factorgen/tokenizer';
import { loadTokenizer } from './loadTokenizer';
import { checkImageShape, loadSplit, type DataSource } from './dataset';

export type EncodeRequest = {
  /** Tokenizer run or checkpoint folder. */
  tokenizer: string;
  /** The token file to write (format in docs/formats.md). */
  out: string;
  data: DataSource;
  split: 'train' | 'test';
  /** Encode a class-balanced subset of this many images (default: all). */
  limit?: number;
  batch: number;
  /** Replace an existing token file at `out` (only a token file). */
  overwrite?: boolean;
  /** Notes and warnings (the dataset's class map, classes left without images). */
  note?: (line: string) => void;
};

export type EncodeResult = { out: string; images: number; grid: [number, number]; subCodebookSizes: number[]; tokenizerId: string; imagesPerSecond: number; seconds: number };

/**
 * Tokenizes a dataset split into a token file: header (tokenizer id and path, grid, sub-codebook sizes, class names),
 * int tokens [n, gridH, gridW, K] and labels [n]. `limit` takes a class-balanced subset in dataset order. The file is
 * written whole at the end; `out` is checked before anything is loaded. Errors: UserError on `out`, `tokenizer`,
 * `dataset`.
 */
export async function encodeToTokenFile(req: EncodeRequest): Promise<EncodeResult> {
  checkOutputFile(req.out, 'out', { overwrite: req.overwrite ?? false, magic: TOKEN_FILE_MAGIC });
  // Written whole at the end: an interrupt before then says the file was not written.
  const written = pendingOutputFile(req.out);
  const { tok, id, dir } = await loadTokenizer(req.tokenizer);
  try {
    const data = await loadSplit(req.data, req.split, req.note);
    checkImageShape(data, tok.cfg);
    const n = Math.min(req.limit ?? data.n, data.n);
    // A class-balanced subset (in dataset order): a folder dataset is grouped by class, so its first n images would
    // leave the last classes without any.
    const rows = n < data.n ? classBalancedRows(data.labels, data.classNames.length, n) : null;
    const per = data.height * data.width * data.channels;
    const images = rows ? new Uint8Array(n * per) : data.images.subarray(0, n * per);
    const labels = rows ? Int32Array.from(rows, (r) => data.labels[r]) : data.labels.subarray(0, n);
    if (rows) rows.forEach((r, i) => images.set(data.images.subarray(r * per, (r + 1) * per), i * per));
    const empty = data.classNames.filter((_, c) => !labels.includes(c));
    if (empty.length > 0) {
      const s = empty.length > 1;
      req.note?.(`warning: \`limit\` ${n}: no images of ${empty.length} class${s ? 'es' : ''} (${empty.slice(0, 5).join(', ')}${empty.length > 5 ? ', …' : ''}); the generator will never see ${s ? 'them' : 'it'}`);
    }
    const t0 = performance.now();
    const tokens = await encodeImages(tok, images, n, req.batch);
    const g = gridSize(tok.cfg);
    const sizes = tok.cfg.quantizer.subCodebooks.map((s) => s.size);
    makeFolders(path.dirname(path.resolve(req.out)));
    writeTokenFile(req.out, {
      header: {
        format: 1, tokenizerId: id, tokenizerPath: dir, configHash: configHash(tok.stored), gridH: g, gridW: g,
        subCodebookSizes: sizes, classNames: data.classNames, count: n, dtype: tokenDtype(sizes), source: `${data.name}/${req.split}`,
      },
      tokens,
      labels,
    });
    written();
    const seconds = (performance.now() - t0) / 1000;
    return { out: req.out, images: n, grid: [g, g], subCodebookSizes: sizes, tokenizerId: id, imagesPerSecond: n / seconds, seconds };
  } finally {
    tok.params.dispose();
  }
}
