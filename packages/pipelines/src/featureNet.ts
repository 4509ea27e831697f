import * as path from 'node:path';
import { repoRoot } from '@factorgen/io';
import { noProgress, type ProgressFactory, type ProgressLine } from './progress';
import type { ImageDataset } from '@factorgen/formats';
import { defaultFeatureNetTraining, type FeatureNet, type TrainFeatureNetOptions } from '@factorgen/eval';
import { committedEvaluator, getFeatureNet } from './evalCache';

export type FeatureNetForOptions = {
  /** Default <repo>/.cache/eval. */
  cacheDir?: string;
  /** Default defaultFeatureNetTraining. */
  training?: TrainFeatureNetOptions;
  /** Notes (default stderr). */
  stream?: NodeJS.WritableStream;
  /** The feature net's training progress (default: none). */
  progress?: ProgressFactory;
};

const rel = (p: string): string => path.relative(process.cwd(), p) || '.';

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
  let progress: ProgressLine | undefined;
  const net = await getFeatureNet(o.cacheDir ?? path.join(repoRoot(), '.cache', 'eval'), train, {
    ...training,
    onStep: (s) => {
      if (!progress) {
        stream.write(`feature net: training on ${train.name} (first use; it is cached afterwards)\n`);
        progress = (o.progress ?? noProgress)(training.steps, 'feature net', { startStep: 0 });
      }
      progress.update(s.step, { loss: s.loss, acc: s.accuracy });
    },
  });
  progress?.done();
  stream.write(net.fromCache ? `feature net: ${net.dir} (cached)\n` : `feature net: trained in ${net.trainSeconds.toFixed(0)} s, cached in ${net.dir}\n`);
  return net;
}
