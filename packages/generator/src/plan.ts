import { Rng } from '@factorgen/shared';
import { seqLen, type Generator } from './config';
import { sample, type SampleOptions } from './sampler';

/** The labels of a sampling request, in output order: `perClass` images of each class in turn. */
export function classLabels(classes: number[], perClass: number): number[] {
  const labels: number[] = [];
  for (const c of classes) for (let i = 0; i < perClass; i++) labels.push(c);
  return labels;
}

/**
 * Samples token grids for `labels` in batches of `batch`. The batch starting at image i draws from its own stream
 * Rng(`${seed}/sample${i}`), so an image depends only on the seed, its position, the batch size and the settings:
 * the CLI and the web page give the same tokens for the same request. onBatch(start, tokens) runs after each batch
 * (tokens [b*T*K] of images start..start+b-1). Returns tokens [N*T*K] (image-major, then position, then sub-codebook).
 */
export async function sampleInBatches(
  gen: Generator,
  labels: number[],
  opts: Omit<SampleOptions, 'rng'>,
  seed: string,
  batch: number,
  onBatch?: (start: number, tokens: Int32Array) => void | Promise<void>,
): Promise<Int32Array> {
  if (!(Number.isInteger(batch) && batch > 0)) throw new Error(`sampleInBatches: batch must be a positive integer (got ${batch})`);
  const per = seqLen(gen.cfg) * gen.cfg.subCodebookSizes.length;
  const tokens = new Int32Array(labels.length * per);
  for (let i = 0; i < labels.length; i += batch) {
    const rng = new Rng(`${seed}/sample${i}`);
    const part = await sample(gen, Int32Array.from(labels.slice(i, i + batch)), { ...opts, rng });
    tokens.set(part, i * per);
    await onBatch?.(i, part);
  }
  return tokens;
}
