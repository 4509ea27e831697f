import { Rng } from '@factorgen/nn';
import { seqLen, type Generator } from './config';
import { sample, type SampleOptions } from './sampler';

/** The labels of a sampling request, in output order: `perClass` images of each class in turn. */
export function classLabels(classes: number[], perClass: number): number[] {
  const labels: number[] = [];
  for (const c of classes) for (let i = 0; i < perClass; i++) labels.push(c);
  return labels;
}

/** Callbacks of sampleInBatches. */
export type BatchEvents = {
  /** After each decoding position of each batch: `done` of `total` = images x positions are sampled (awaited). */
  onProgress?: (done: number, total: number) => void | Promise<void>;
  /** After each batch: its first image's index and its tokens [b*T*K]; awaited before the next batch starts. */
  onBatch?: (start: number, tokens: Int32Array) => void | Promise<void>;
};

/**
 * Samples token grids for `labels` in batches of `batch`. The batch starting at image i draws from its own stream
 * Rng(`${seed}/sample${i}`), so an image depends only on the seed, its position, the batch size and the settings:
 * `factorgen sample` and the web page give the same tokens for the same request (on the same backend).
 * Returns tokens [N*T*K] (image-major, then raster position, then sub-codebook).
 */
export async function sampleInBatches(
  gen: Generator,
  labels: number[],
  opts: Omit<SampleOptions, 'rng' | 'onProgress'>,
  seed: string,
  batch: number,
  events: BatchEvents = {},
): Promise<Int32Array> {
  if (!(Number.isInteger(batch) && batch > 0)) throw new Error(`sampleInBatches: batch must be a positive integer (got ${batch})`);
  const T = seqLen(gen.cfg);
  const per = T * gen.cfg.subCodebookSizes.length;
  const total = labels.length * T;
  const tokens = new Int32Array(labels.length * per);
  for (let i = 0; i < labels.length; i += batch) {
    const part = labels.slice(i, i + batch);
    const rng = new Rng(`${seed}/sample${i}`);
    const onProgress = events.onProgress && ((done: number) => events.onProgress?.(i * T + part.length * done, total));
    const out = await sample(gen, Int32Array.from(part), { ...opts, rng, onProgress });
    tokens.set(out, i * per);
    await events.onBatch?.(i, out);
  }
  return tokens;
}
