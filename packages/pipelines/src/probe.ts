import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeFolders, openOutputDir, writeGrid, writeManifest } from '@factorgen/io';
import { noProgress, type ProgressFactory } from './progress';
import { decodeToImages, encodeImages, gridSize, pooledSubCodes, swapSubCodebook } from '@factorgen/tokenizer';
import { linearProbe } from '@factorgen/eval';
import { loadTokenizer } from './loadTokenizer';
import { checkImageShape, loadSplit, type DataSource } from './dataset';

export type ProbeRequest = {
  /** Tokenizer run or checkpoint folder. */
  tokenizer: string;
  data: DataSource;
  /** Train images the probes are fitted on (the first n). */
  trainLimit: number;
  /** Test images the probes are scored on and the grids take (the first n). */
  limit: number;
  /** Full-batch Adam steps of each probe. */
  steps: number;
  /** Grid rows: images whose sub-codebook tokens are held fixed. */
  rows: number;
  /** Grid columns: images the other sub-codebooks come from. */
  cols: number;
  /** Folder for probe.json and grid-k<k>.png. */
  out: string;
  batch: number;
  /** Replace an earlier probe in `out` (only the files factorgen wrote there). */
  overwrite?: boolean;
  note?: (line: string) => void;
  /** Encoding and fitting progress (default: none). */
  progress?: ProgressFactory;
};

type Accuracies = { dim: number; testAccuracy: number; trainAccuracy: number };

/** probe.json: per sub-codebook k (`k0`, `k1`, ...) and for all codes concatenated (`all`), the probe's accuracies. */
export type ProbeResult = {
  tokenizer: string; tokenizerId: string; trainImages: number; testImages: number; chance: number;
  probe: Record<string, Accuracies>;
  what: string;
  grids: string[];
};

/** Row-wise concatenation of per-sub-codebook code vectors [n, dims[k]] into [n, sum(dims)]. */
function concatCodes(codes: Float32Array[], dims: number[], n: number): Float32Array {
  const D = dims.reduce((a, b) => a + b, 0);
  const out = new Float32Array(n * D);
  for (let i = 0; i < n; i++) {
    let o = 0;
    codes.forEach((c, k) => {
      out.set(c.subarray(i * dims[k], (i + 1) * dims[k]), i * D + o);
      o += dims[k];
    });
  }
  return out;
}

/**
 * What each sub-codebook knows: a softmax-regression probe (linearProbe) on the mean-pooled quantized codes of each
 * sub-codebook and of all of them, fitted on `trainLimit` train images and scored on `limit` test images; and per
 * sub-codebook k a grid OUT/grid-k<k>.png whose row r keeps k's tokens of test image r and takes every other
 * sub-codebook from test image rows + c (column c). Writes OUT/probe.json. Progress goes to `progress`. Errors:
 * UserError on `tokenizer`, `dataset`, `out`.
 */
export async function probeTokenizer(req: ProbeRequest): Promise<ProbeResult> {
  const train = await loadSplit(req.data, 'train', req.note);
  const test = await loadSplit(req.data, 'test', req.note);
  const { tok, id, dir } = await loadTokenizer(req.tokenizer);
  try {
    // After the inputs load, before the work: an unwritable or occupied folder fails now, not after the probes.
    const lock = openOutputDir(req.out, 'out', 'probe', 'eval probe', { overwrite: req.overwrite });
    try {
      checkImageShape(train, tok.cfg, undefined, req.data.dataset);
      const per = train.height * train.width * train.channels;
      const nTrain = Math.min(req.trainLimit, train.n);
      const nTest = Math.min(req.limit, test.n);
      // Encoding trainLimit + limit images, then fitting K + 1 probes, takes minutes at the defaults: say how far.
      const encoding = (req.progress ?? noProgress)(nTrain + nTest, 'probe: encode', { startStep: 0, unit: 'image' });
      const trainTokens = await encodeImages(tok, train.images.subarray(0, nTrain * per), nTrain, req.batch, (done) => encoding.update(done, {}));
      const testTokens = await encodeImages(tok, test.images.subarray(0, nTest * per), nTest, req.batch, (done) => encoding.update(nTrain + done, {}));
      encoding.done();
      const trCodes = await pooledSubCodes(tok, trainTokens, nTrain);
      const teCodes = await pooledSubCodes(tok, testTokens, nTest);
      const K = trCodes.length;
      writeManifest(req.out, 'probe', ['probe.json', ...Array.from({ length: K }, (_v, k) => `grid-k${k}.png`)]);
      const classes = train.classNames.length;
      const dims = tok.cfg.quantizer.subCodebooks.map((s) => s.dim);
      const yTrain = train.labels.subarray(0, nTrain);
      const yTest = test.labels.subarray(0, nTest);
      const fitting = (req.progress ?? noProgress)((K + 1) * req.steps, 'probe: fit', { startStep: 0 });
      const fitOpts = (probe: number) => ({ steps: req.steps, onStep: (s: number) => fitting.update(probe * req.steps + s, {}) });
      const perSub = trCodes.map((c, k) => linearProbe({ x: c, y: yTrain }, { x: teCodes[k], y: yTest }, dims[k], classes, fitOpts(k)));
      const all = linearProbe(
        { x: concatCodes(trCodes, dims, nTrain), y: yTrain }, { x: concatCodes(teCodes, dims, nTest), y: yTest }, dims.reduce((a, b) => a + b, 0), classes, fitOpts(K),
      );
      fitting.done();
      makeFolders(req.out);
      // Grids: row r keeps sub-codebook k's tokens of test image r; column c takes every other sub-codebook from test image rows + c.
      const g = gridSize(tok.cfg);
      const tokPer = g * g * K;
      const R = Math.min(req.rows, nTest);
      const C = Math.min(req.cols, nTest - R);
      const grids: string[] = [];
      const img = (i: number) => test.images.subarray(i * per, (i + 1) * per);
      for (let k = 0; k < K && C > 0; k++) {
        const swapped = new Int32Array(R * C * tokPer);
        for (let r = 0; r < R; r++) {
          for (let c = 0; c < C; c++) {
            const mixed = swapSubCodebook(testTokens.subarray(r * tokPer, (r + 1) * tokPer), testTokens.subarray((R + c) * tokPer, (R + c + 1) * tokPer), K, k);
            swapped.set(mixed, (r * C + c) * tokPer);
          }
        }
        const dec = await decodeToImages(tok, swapped, R * C, req.batch);
        const rows = [{ label: 'others from', images: Array.from({ length: C }, (_v, c) => img(R + c)) }];
        for (let r = 0; r < R; r++) {
          rows.push({ label: `k${k} of #${r}`, images: [img(r), ...Array.from({ length: C }, (_v, c) => dec.subarray((r * C + c) * per, (r * C + c + 1) * per))] });
        }
        rows[0].images.unshift(new Uint8Array(per).fill(255));
        const file = path.join(req.out, `grid-k${k}.png`);
        await writeGrid(file, rows, test.height, test.width, test.channels);
        grids.push(file);
      }
      const result: ProbeResult = {
        tokenizer: dir, tokenizerId: id, trainImages: nTrain, testImages: nTest, chance: 1 / classes,
        probe: {
          ...Object.fromEntries(perSub.map((p, k) => [`k${k}`, { dim: dims[k], testAccuracy: p.testAccuracy, trainAccuracy: p.trainAccuracy }])),
          all: { dim: dims.reduce((a, b) => a + b, 0), testAccuracy: all.testAccuracy, trainAccuracy: all.trainAccuracy },
        },
        what: 'softmax regression on the mean over positions of each sub-codebook\'s quantized code vectors (standardized), fitted on the train images, scored on the test images',
        grids,
      };
      fs.writeFileSync(path.join(req.out, 'probe.json'), JSON.stringify(result, null, 2));
      return result;
    } finally {
      lock.release();
    }
  } finally {
    tok.params.dispose();
  }
}
