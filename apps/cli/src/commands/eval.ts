import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { positiveInt } from '../ui/flags';
import { repoRoot, checkOutputFile, openOutputDir, writeManifest, writeGrid } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { Progress } from '../ui/progress';
import { type ImageDataset } from '@factorgen/formats';
import { loadTokenizer } from '@factorgen/pipelines';
import { reconstructImages, encodeImages, decodeToImages, pooledSubCodes, swapSubCodebook, gridSize } from '@factorgen/tokenizer';
import { getFeatureNet, committedEvaluator, evalSamples, evalRecon, realFloor, randomSubset, readSampleFolder, partialSampleFolderWarning, smallSampleFidWarning } from '@factorgen/pipelines';
import { linearProbe, defaultFeatureNetTraining, fidDim, type FeatureNet, type TrainFeatureNetOptions } from '@factorgen/eval';
import { addDataOptions, backendOption, threadsOption, loadSplit, startBackend, note, printJson, rel, type DataFlags } from './common';
import { makeFolders } from '@factorgen/io';

export type FeatureNetForOptions = {
  /** Default <repo>/.cache/eval. */
  cacheDir?: string;
  /** Default defaultFeatureNetTraining. */
  training?: TrainFeatureNetOptions;
  /** Notes and progress (default stderr). */
  stream?: NodeJS.WritableStream;
};

/**
 * The evaluation feature net for a dataset's train split: the committed one (pretrained/evaluator/<dataset>/) when it
 * was trained on exactly this train split; otherwise one trained once and cached under .cache/eval. That first
 * training takes minutes: it says so and shows a progress line (step, loss, batch accuracy, ETA).
 */
export async function featureNetFor(train: ImageDataset, o: FeatureNetForOptions = {}): Promise<FeatureNet> {
  const stream = o.stream ?? process.stderr;
  const committed = o.cacheDir === undefined && o.training === undefined ? committedEvaluator(train) : null;
  if (committed) {
    stream.write(`feature net: ${rel(committed.dir)} (committed, ${(100 * committed.testAccuracy).toFixed(2)} % test accuracy)\n`);
    return committed.net;
  }
  const training = o.training ?? defaultFeatureNetTraining;
  let progress: Progress | undefined;
  const net = await getFeatureNet(o.cacheDir ?? path.join(repoRoot(), '.cache', 'eval'), train, {
    ...training,
    onStep: (s) => {
      if (!progress) {
        stream.write(`feature net: training on ${train.name} (first use; it is cached afterwards)\n`);
        progress = new Progress(training.steps, 'feature net', { stream, startStep: 0 });
      }
      progress.update(s.step, { loss: s.loss, acc: s.accuracy });
    },
  });
  progress?.done();
  stream.write(net.fromCache ? `feature net: ${net.dir} (cached)\n` : `feature net: trained in ${net.trainSeconds.toFixed(0)} s, cached in ${net.dir}\n`);
  return net;
}

const perClass = (acc: number[], names: string[]) => Object.fromEntries(names.map((n, c) => [n, acc[c]]));

export function registerEval(program: Command): void {
  const ev = program.command('eval').description('FID, class accuracy, precision/recall for samples; rFID, PSNR, SSIM for reconstructions');

  const samples = ev.command('samples').description('score a sample folder (OUT/<index>-<slug>/*.png) against the test split');
  addDataOptions(samples);
  samples
    .requiredOption('--samples <dir>', 'folder in the <index>-<slug>/NNNN.png layout (from `factorgen sample` or any tool)')
    .option('--out <file>', 'also write the JSON here')
    .option('--overwrite', 'replace an existing --out file', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & { samples: string; out?: string; overwrite: boolean; backend: 'auto'; threads: number | 'auto' }) => {
      if (f.out) checkOutputFile(f.out, '--out', { overwrite: f.overwrite, magic: '{' });
      await startBackend(f.backend, f.threads);
      const train = await loadSplit(f, 'train');
      const test = await loadSplit(f, 'test');
      const gen = await readSampleFolder(f.samples, test.classNames, test.height, test.channels);
      const partial = partialSampleFolderWarning(f.samples);
      if (partial) note(partial);
      const net = await featureNetFor(train);
      const metrics = await evalSamples(gen, test, net);
      const floor = await realFloor(randomSubset(train, Math.min(gen.n, train.n)), test, net);
      const warning = smallSampleFidWarning(gen.n, fidDim(net.cfg), floor.fid);
      if (warning) note(warning);
      const result = {
        samples: f.samples, ...metrics, perClassAccuracy: perClass(metrics.perClassAccuracy, test.classNames),
        realFloor: { ...floor, n: Math.min(gen.n, train.n), what: 'random train images of the same count vs the test split' },
      };
      if (f.out) fs.writeFileSync(f.out, JSON.stringify(result, null, 2));
      printJson(result);
    });

  const recon = ev.command('recon').description('rFID, PSNR and SSIM of a tokenizer on the test split');
  addDataOptions(recon);
  recon
    .requiredOption('--tokenizer <dir>', 'tokenizer run or checkpoint folder')
    .option('--limit <n>', 'first n test images', positiveInt, 10000)
    .option('--batch <n>', 'batch size', positiveInt, 200)
    .option('--out <file>', 'also write the JSON here')
    .option('--overwrite', 'replace an existing --out file', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & { tokenizer: string; limit: number; batch: number; out?: string; overwrite: boolean; backend: 'auto'; threads: number | 'auto' }) => {
      if (f.out) checkOutputFile(f.out, '--out', { overwrite: f.overwrite, magic: '{' });
      await startBackend(f.backend, f.threads);
      const train = await loadSplit(f, 'train');
      const test = await loadSplit(f, 'test');
      const { tok, id, dir } = await loadTokenizer(f.tokenizer);
      // Shapes before any work (reconstruction, the feature net's first training): as reconstruct, encode and probe.
      if (test.height !== tok.cfg.imageSize || test.width !== tok.cfg.imageSize || test.channels !== tok.cfg.channels) {
        tok.params.dispose();
        throw new UserError(`--dataset ${f.dataset}: images are ${test.height}x${test.width}x${test.channels}, the tokenizer ${dir} expects ${tok.cfg.imageSize}x${tok.cfg.imageSize}x${tok.cfg.channels}`);
      }
      const n = Math.min(f.limit, test.n);
      const orig = randomSubset(test, n);
      const rec: ImageDataset = { ...orig, name: `${orig.name}-recon`, images: await reconstructImages(tok, orig.images, n, f.batch) };
      tok.params.dispose();
      const net = await featureNetFor(train);
      const m = await evalRecon(orig, rec, net);
      const floor = await realFloor(randomSubset(train, n), orig, net);
      const result = {
        tokenizer: dir, tokenizerId: id, n, ...m,
        rfidRealFloor: { fid: floor.fid, n, what: 'random train images of the same count vs the same test originals' },
        psnrNote: 'psnrGlobalMse = 10 log10(255^2 / MSE over every pixel of the n images); psnrPerImageMean = mean of per-image PSNRs',
      };
      if (f.out) fs.writeFileSync(f.out, JSON.stringify(result, null, 2));
      printJson(result);
    });

  const probe = ev
    .command('probe')
    .description("what each sub-codebook knows: linear-probe class accuracy of its mean-pooled codes, and grids with one sub-codebook's tokens held fixed");
  addDataOptions(probe);
  probe
    .requiredOption('--tokenizer <dir>', 'tokenizer run or checkpoint folder')
    .option('--train-limit <n>', 'train images the probes are fitted on (the first n; encoding them is most of the time)', positiveInt, 10000)
    .option('--limit <n>', 'test images the probes are scored on and the grids take (the first n; --train-limit sets the train images)', positiveInt, 10000)
    .option('--steps <n>', 'full-batch Adam steps of each probe', positiveInt, 500)
    .option('--rows <n>', 'grid rows: images whose sub-codebook tokens are held fixed', positiveInt, 6)
    .option('--cols <n>', 'grid columns: images the other sub-codebooks come from', positiveInt, 8)
    .option('--out <dir>', 'folder for probe.json and grid-k<k>.png', 'out/probe')
    .option('--batch <n>', 'batch size', positiveInt, 200)
    .option('--overwrite', 'replace an earlier probe in --out (only the files factorgen wrote there)', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & { tokenizer: string; trainLimit: number; limit: number; steps: number; rows: number; cols: number; out: string; batch: number; overwrite: boolean; backend: 'auto'; threads: number | 'auto' }) => {
      await startBackend(f.backend, f.threads);
      const train = await loadSplit(f, 'train');
      const test = await loadSplit(f, 'test');
      const { tok, id, dir } = await loadTokenizer(f.tokenizer);
      // After the inputs load, before the work: an unwritable or occupied folder fails now, not after the probes.
      const lock = openOutputDir(f.out, '--out', 'probe', 'eval probe', { overwrite: f.overwrite });
      try {
        if (train.height !== tok.cfg.imageSize || train.channels !== tok.cfg.channels) {
          throw new UserError(`--dataset ${f.dataset}: images are ${train.height}x${train.width}x${train.channels}, the tokenizer expects ${tok.cfg.imageSize}x${tok.cfg.imageSize}x${tok.cfg.channels}`);
        }
        const per = train.height * train.width * train.channels;
        const nTrain = Math.min(f.trainLimit, train.n);
        const nTest = Math.min(f.limit, test.n);
        // Encoding --train-limit + --limit images, then fitting K + 1 probes, takes minutes at the defaults: say how far.
        const encoding = new Progress(nTrain + nTest, 'probe: encode', { startStep: 0, unit: 'image' });
        const trainTokens = await encodeImages(tok, train.images.subarray(0, nTrain * per), nTrain, f.batch, (done) => encoding.update(done, {}));
        const testTokens = await encodeImages(tok, test.images.subarray(0, nTest * per), nTest, f.batch, (done) => encoding.update(nTrain + done, {}));
        encoding.done();
        const trCodes = await pooledSubCodes(tok, trainTokens, nTrain);
        const teCodes = await pooledSubCodes(tok, testTokens, nTest);
        const K = trCodes.length;
        writeManifest(f.out, 'probe', ['probe.json', ...Array.from({ length: K }, (_v, k) => `grid-k${k}.png`)]);
        const classes = train.classNames.length;
        const dims = tok.cfg.quantizer.subCodebooks.map((s) => s.dim);
        const concat = (codes: Float32Array[], n: number) => {
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
        };
        const yTrain = train.labels.subarray(0, nTrain);
        const yTest = test.labels.subarray(0, nTest);
        const fitting = new Progress((K + 1) * f.steps, 'probe: fit', { startStep: 0 });
        const fitOpts = (probe: number) => ({ steps: f.steps, onStep: (s: number) => fitting.update(probe * f.steps + s, {}) });
        const perSub = trCodes.map((c, k) => linearProbe({ x: c, y: yTrain }, { x: teCodes[k], y: yTest }, dims[k], classes, fitOpts(k)));
        const all = linearProbe({ x: concat(trCodes, nTrain), y: yTrain }, { x: concat(teCodes, nTest), y: yTest }, dims.reduce((a, b) => a + b, 0), classes, fitOpts(K));
        fitting.done();
        makeFolders(f.out);
        // Grids: row r keeps sub-codebook k's tokens of test image r; column c takes every other sub-codebook from test image rows + c.
        const g = gridSize(tok.cfg);
        const tokPer = g * g * K;
        const R = Math.min(f.rows, nTest);
        const C = Math.min(f.cols, nTest - R);
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
          const dec = await decodeToImages(tok, swapped, R * C, f.batch);
          const rows = [{ label: 'others from', images: Array.from({ length: C }, (_v, c) => img(R + c)) }];
          for (let r = 0; r < R; r++) {
            rows.push({ label: `k${k} of #${r}`, images: [img(r), ...Array.from({ length: C }, (_v, c) => dec.subarray((r * C + c) * per, (r * C + c + 1) * per))] });
          }
          rows[0].images.unshift(new Uint8Array(per).fill(255));
          const file = path.join(f.out, `grid-k${k}.png`);
          await writeGrid(file, rows, test.height, test.width, test.channels);
          grids.push(file);
        }
        const result = {
          tokenizer: dir, tokenizerId: id, trainImages: nTrain, testImages: nTest, chance: 1 / classes,
          probe: {
            ...Object.fromEntries(perSub.map((p, k) => [`k${k}`, { dim: dims[k], testAccuracy: p.testAccuracy, trainAccuracy: p.trainAccuracy }])),
            all: { dim: dims.reduce((a, b) => a + b, 0), testAccuracy: all.testAccuracy, trainAccuracy: all.trainAccuracy },
          },
          what: 'softmax regression on the mean over positions of each sub-codebook\'s quantized code vectors (standardized), fitted on the train images, scored on the test images',
          grids,
        };
        fs.writeFileSync(path.join(f.out, 'probe.json'), JSON.stringify(result, null, 2));
        lock.release();
        printJson(result);
      } finally {
        tok.params.dispose();
      }
    });
}
