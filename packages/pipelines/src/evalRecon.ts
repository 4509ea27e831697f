import * as fs from 'node:fs';
import { checkOutputFile } from '@factorgen/io';
import type { ImageDataset } from '@factorgen/formats';
import { reconstructImages } from '@factorgen/tokenizer';
import { evalRecon, randomSubset, realFloor, type ReconMetrics } from './evaluate';
import { featureNetFor } from './featureNet';
import { type ProgressFactory } from './progress';
import { loadTokenizer } from './loadTokenizer';
import { checkImageShape, loadSplit, type DataSource } from './dataset';

export type EvalReconRequest = {
  /** The feature net's training progress, when it must be trained first (default: none). */
  progress?: ProgressFactory;
  /** Tokenizer run or checkpoint folder. */
  tokenizer: string;
  data: DataSource;
  /** Score a random subset of this many test images (all when larger). */
  limit: number;
  batch: number;
  /** Also write the JSON here. */
  out?: string;
  /** Replace an existing `out` file. */
  overwrite?: boolean;
  note?: (line: string) => void;
};

export type EvalReconResult = { tokenizer: string; tokenizerId: string; n: number } & ReconMetrics & {
  rfidRealFloor: { fid: number; n: number; what: string };
  psnrNote: string;
};

/**
 * rFID, PSNR and SSIM of a tokenizer's reconstructions of `limit` random test images (evalRecon), with the rFID of
 * as many random train images as the floor. Shapes are checked before any work. Errors: UserError on `out`,
 * `tokenizer`, `dataset`.
 */
export async function scoreReconstruction(req: EvalReconRequest): Promise<EvalReconResult> {
  if (req.out) checkOutputFile(req.out, 'out', { overwrite: req.overwrite ?? false, magic: '{' });
  const train = await loadSplit(req.data, 'train', req.note);
  const test = await loadSplit(req.data, 'test', req.note);
  const { tok, id, dir } = await loadTokenizer(req.tokenizer);
  let rec: ImageDataset;
  const n = Math.min(req.limit, test.n);
  const orig = randomSubset(test, n);
  try {
    // Shapes before any work (reconstruction, the feature net's first training): as reconstruct, encode and probe.
    checkImageShape(test, tok.cfg, dir, req.data.dataset);
    rec = { ...orig, name: `${orig.name}-recon`, images: await reconstructImages(tok, orig.images, n, req.batch) };
  } finally {
    tok.params.dispose();
  }
  const net = await featureNetFor(train, { progress: req.progress });
  const m = await evalRecon(orig, rec, net);
  const floor = await realFloor(randomSubset(train, n), orig, net);
  const result: EvalReconResult = {
    tokenizer: dir, tokenizerId: id, n, ...m,
    rfidRealFloor: { fid: floor.fid, n, what: 'random train images of the same count vs the same test originals' },
    psnrNote: 'psnrGlobalMse = 10 log10(255^2 / MSE over every pixel of the n images); psnrPerImageMean = mean of per-image PSNRs',
  };
  if (req.out) fs.writeFileSync(req.out, JSON.stringify(result, null, 2));
  return result;
}
