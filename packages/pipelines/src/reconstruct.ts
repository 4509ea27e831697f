import * as fs from 'node:fs';
import * as path from 'node:path';
import { openOutputDir, writeGrid, writeManifest } from '@factorgen/io';
import { reconstructImages } from '@factorgen/tokenizer';
import { meanHueError, psnr, psnrGlobal, ssimWhereDefined, type HueError } from '@factorgen/eval';
import { loadTokenizer } from './loadTokenizer';
import { checkImageShape, loadSplit, type DataSource } from './dataset';

export type ReconstructRequest = {
  /** Tokenizer run or checkpoint folder. */
  tokenizer: string;
  data: DataSource;
  split: 'train' | 'test';
  /** Score the first n images of the split. */
  limit: number;
  /** Images in the PNG grid (at most `limit`). */
  grid: number;
  /** Folder for recon.png and metrics.json. */
  out: string;
  batch: number;
  /** Replace an earlier reconstruction in `out` (only the files factorgen wrote there). */
  overwrite?: boolean;
  note?: (line: string) => void;
};

/** metrics.json of a reconstruction; PSNR in dB, SSIM null for images under 11x11, hue error only for RGB. */
export type ReconstructMetrics = {
  tokenizer: string; tokenizerId: string; dataset: string; split: 'train' | 'test'; images: number;
  psnrGlobalMse: number; psnrPerImageMean: number; ssim: number | null; hueError?: HueError; imagesPerSecond: number; grid: string;
};

/**
 * Encodes and decodes the first `limit` images of a split; writes OUT/recon.png (originals over reconstructions) and
 * OUT/metrics.json (PSNR over all pixels and per-image mean, SSIM, hue error for RGB). The inputs are checked before
 * `out` is touched. Errors: UserError on `tokenizer`, `dataset`, `out`.
 */
export async function reconstructSplit(req: ReconstructRequest): Promise<ReconstructMetrics> {
  const { tok, id, dir } = await loadTokenizer(req.tokenizer);
  try {
    const data = await loadSplit(req.data, req.split, req.note);
    checkImageShape(data, tok.cfg);
    // After the inputs are checked (a bad tokenizer touches no folder), before the work.
    const lock = openOutputDir(req.out, 'out', 'reconstructions', 'tokenizer reconstruct', { overwrite: req.overwrite });
    try {
      const n = Math.min(req.limit, data.n);
      const per = data.height * data.width * data.channels;
      const orig = data.images.subarray(0, n * per);
      const t0 = performance.now();
      const rec = await reconstructImages(tok, orig, n, req.batch);
      const seconds = (performance.now() - t0) / 1000;
      writeManifest(req.out, 'reconstructions', ['recon.png', 'metrics.json']);
      const g = Math.min(req.grid, n);
      const pick = (src: Uint8Array) => Array.from({ length: g }, (_, i) => src.subarray(i * per, (i + 1) * per));
      const gridPath = path.join(req.out, 'recon.png');
      await writeGrid(gridPath, [{ label: 'original', images: pick(orig) }, { label: 'recon', images: pick(rec) }], data.height, data.width, data.channels);
      const metrics: ReconstructMetrics = {
        tokenizer: dir, tokenizerId: id, dataset: data.name, split: req.split, images: n,
        psnrGlobalMse: psnrGlobal(orig, rec),
        psnrPerImageMean: psnr(orig, rec, n),
        ssim: ssimWhereDefined(orig, rec, { n, height: data.height, width: data.width, channels: data.channels }),
        ...(data.channels === 3 ? { hueError: meanHueError(orig, rec, 3) } : {}),
        imagesPerSecond: n / seconds, grid: gridPath,
      };
      fs.writeFileSync(path.join(req.out, 'metrics.json'), JSON.stringify(metrics, null, 2));
      return metrics;
    } finally {
      lock.release();
    }
  } finally {
    tok.params.dispose();
  }
}
