import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { ParamStore, Rng, UserError, assignParams, hasCheckpoint, loadCheckpoint, saveCheckpoint, slugify } from '@factorgen/shared';
import type { ImageDataset } from '@factorgen/shared';
import { createFeatureNet, trainFeatureNet, trainingIdentity } from './featureNet';
import type { FeatureNet, FeatureNetConfig, TrainFeatureNetOptions } from './featureNet';

/** Checkpoint kind of saved feature networks. */
export const FEATNET_KIND = 'featnet';

/** Saves `net` as a shared checkpoint (kind "featnet") in `dir`, with how it was trained in `extra`. */
export async function saveFeatureNet(net: FeatureNet, dir: string, extra: { training: object; trainSeconds: number }): Promise<void> {
  await saveCheckpoint(dir, { kind: FEATNET_KIND, config: net.cfg, step: 0, params: net.store.vars, extra });
}

/** Loads a feature network saved by saveFeatureNet; one-line UserError naming `dir` when it is missing or does not match. */
export async function loadFeatureNet(dir: string): Promise<FeatureNet & { trainSeconds: number }> {
  const ck = await loadCheckpoint(dir, FEATNET_KIND);
  const cfg = ck.config as unknown as FeatureNetConfig;
  if (!Array.isArray(cfg.widths) || !Array.isArray(cfg.blocks) || typeof cfg.featureDim !== 'number') {
    throw new UserError(`${dir}: not a feature-net config (widths/blocks/featureDim missing)`);
  }
  // Initial values are overwritten by assignParams; the Rng only satisfies the store.
  const store = new ParamStore(new Rng('featnet/load'));
  try {
    createFeatureNet(store, cfg);
    assignParams(store.vars, ck.tensors, dir);
  } catch (e) {
    store.dispose();
    throw e;
  }
  const trainSeconds = typeof ck.extra?.trainSeconds === 'number' ? ck.extra.trainSeconds : NaN;
  return { cfg, store, trainSeconds };
}

/** A digest of a dataset's geometry, classes, labels and pixels (so a changed dataset never reuses old weights). */
export function datasetDigest(ds: ImageDataset): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([ds.n, ds.height, ds.width, ds.channels, ds.classNames]));
  h.update(ds.images);
  h.update(new Uint8Array(ds.labels.buffer, ds.labels.byteOffset, ds.labels.byteLength));
  return h.digest('hex');
}

/** The cache folder for (dataset, options): cacheDir/<dataset-slug>-<12 hex of sha256(dataset, options)>. */
export function featureNetCacheDir(cacheDir: string, ds: ImageDataset, opts: TrainFeatureNetOptions): string {
  const key = createHash('sha256')
    .update(FEATNET_KIND)
    .update(datasetDigest(ds))
    .update(JSON.stringify(trainingIdentity(ds, opts)))
    .digest('hex')
    .slice(0, 12);
  return path.join(cacheDir, `${slugify(ds.name) || 'dataset'}-${key}`);
}

/**
 * The feature network for `ds` (the train split) and `opts`: loaded from the cache folder when a previous run
 * trained it, otherwise trained now and saved there. Returns where it lives and whether it came from the cache.
 */
export async function getFeatureNet(
  cacheDir: string,
  ds: ImageDataset,
  opts: TrainFeatureNetOptions,
): Promise<FeatureNet & { dir: string; fromCache: boolean; trainSeconds: number }> {
  const dir = featureNetCacheDir(cacheDir, ds, opts);
  if (hasCheckpoint(dir)) {
    const net = await loadFeatureNet(dir);
    return { ...net, dir, fromCache: true };
  }
  const t0 = performance.now();
  const net = await trainFeatureNet(ds, opts);
  const trainSeconds = (performance.now() - t0) / 1000;
  await saveFeatureNet(net, dir, { training: trainingIdentity(ds, opts), trainSeconds });
  return { ...net, dir, fromCache: false, trainSeconds };
}
