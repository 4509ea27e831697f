import * as fs from 'node:fs';
import { checkOutputFile } from '@factorgen/io';
import { fidDim } from '@factorgen/eval';
import { evalSamples, partialSampleFolderWarning, randomSubset, readSampleFolder, realFloor, smallSampleFidWarning, type SampleMetrics } from './evaluate';
import { featureNetFor } from './featureNet';
import { type ProgressFactory } from './progress';
import { loadSplit, type DataSource } from './dataset';

export type EvalSamplesRequest = {
  /** The feature net's training progress, when it must be trained first (default: none). */
  progress?: ProgressFactory;
  /** Folder in the <index>-<slug>/NNNN.png layout (from sampleToFolder or any tool). */
  samples: string;
  /** The dataset whose test split the samples are scored against (its train split gives the feature net). */
  data: DataSource;
  /** Also write the JSON here. */
  out?: string;
  /** Replace an existing `out` file. */
  overwrite?: boolean;
  /** Warnings and notes (partial folder, too few samples for FID, the feature net). */
  note?: (line: string) => void;
};

export type EvalSamplesResult = Omit<SampleMetrics, 'perClassAccuracy'> & {
  samples: string;
  perClassAccuracy: Record<string, number>;
  realFloor: Awaited<ReturnType<typeof realFloor>> & { n: number; what: string };
};

/**
 * Scores a sample folder against the test split: FID, class accuracy (overall and per class name), precision/recall
 * from evalSamples, and the real floor (random train images of the same count vs the test split). Errors: UserError on
 * `out`, `samples`, `data`.
 */
export async function scoreSampleFolder(req: EvalSamplesRequest): Promise<EvalSamplesResult> {
  if (req.out) checkOutputFile(req.out, 'out', { overwrite: req.overwrite ?? false, magic: '{' });
  const train = await loadSplit(req.data, 'train', req.note);
  const test = await loadSplit(req.data, 'test', req.note);
  const gen = await readSampleFolder(req.samples, test.classNames, test.height, test.channels);
  const partial = partialSampleFolderWarning(req.samples);
  if (partial) req.note?.(partial);
  const net = await featureNetFor(train, { progress: req.progress });
  const metrics = await evalSamples(gen, test, net);
  const floor = await realFloor(randomSubset(train, Math.min(gen.n, train.n)), test, net);
  const warning = smallSampleFidWarning(gen.n, fidDim(net.cfg), floor.fid);
  if (warning) req.note?.(warning);
  const result: EvalSamplesResult = {
    samples: req.samples, ...metrics, perClassAccuracy: Object.fromEntries(test.classNames.map((c, i) => [c, metrics.perClassAccuracy[i]])),
    realFloor: { ...floor, n: Math.min(gen.n, train.n), what: 'random train images of the same count vs the test split' },
  };
  if (req.out) fs.writeFileSync(req.out, JSON.stringify(result, null, 2));
  return result;
}
