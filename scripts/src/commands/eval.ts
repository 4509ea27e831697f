import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { positiveInt, repoRoot, checkOutputFile, Progress, type ImageDataset } from '@factorgen/shared';
import { loadTokenizer, reconstructImages } from '@factorgen/tokenizer';
import {
  getFeatureNet, evalSamples, evalRecon, realFloor, randomSubset, readSampleFolder, defaultFeatureNetTraining, committedEvaluator,
  type FeatureNet, type TrainFeatureNetOptions,
} from '@factorgen/eval';
import { addDataOptions, backendOption, loadSplit, startBackend, note, printJson, rel, type DataFlags } from './common';

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
    .addOption(backendOption())
    .action(async (f: DataFlags & { samples: string; out?: string; backend: 'auto' }) => {
      if (f.out) checkOutputFile(f.out, '--out');
      await startBackend(f.backend);
      const train = await loadSplit(f, 'train');
      const test = await loadSplit(f, 'test');
      const gen = await readSampleFolder(f.samples, test.classNames, test.height, test.channels);
      const net = await featureNetFor(train);
      const metrics = await evalSamples(gen, test, net);
      const floor = await realFloor(randomSubset(train, Math.min(gen.n, train.n)), test, net);
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
    .addOption(backendOption())
    .action(async (f: DataFlags & { tokenizer: string; limit: number; batch: number; out?: string; backend: 'auto' }) => {
      if (f.out) checkOutputFile(f.out, '--out');
      await startBackend(f.backend);
      const train = await loadSplit(f, 'train');
      const test = await loadSplit(f, 'test');
      const { tok, id, dir } = await loadTokenizer(f.tokenizer);
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
}
