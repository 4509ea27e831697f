import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { ParamStore, Rng } from '@factorgen/nn';
import { UserError } from '@factorgen/tfjs-ext';
import { assignParams, slugify } from '@factorgen/formats';
import { repoRoot, hasCheckpoint, loadCheckpoint, saveCheckpoint } from '@factorgen/io';
import type { ImageDataset, LoadedTensor } from '@factorgen/formats';
import { fromHalf, toHalf } from '@factorgen/eval';
import { createFeatureNet, trainFeatureNet, trainingIdentity } from '@factorgen/eval';
import type { FeatureNet, FeatureNetConfig, TrainFeatureNetOptions } from '@factorgen/eval';

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

/** Format tag of the committed float16 feature nets (config.json + weights.f16.bin). */
export const COMPACT_FORMAT = 'featnet-f16-1';

type CompactEntry = { name: string; shape: number[]; offset: number; length: number };

/**
 * Saves `net` at half precision: dir/config.json { format, config, extra, entries: {name, shape, offset, length}[] }
 * (offset and length in float16 values) and dir/weights.f16.bin (little-endian float16 back to back). Half the size
 * of a float32 checkpoint, which is what lets the evaluator be committed; the loaded net is the float16-rounded one,
 * so every figure measured with it is measured with exactly what is committed.
 */
export async function saveFeatureNetCompact(net: FeatureNet, dir: string, extra: object): Promise<void> {
  const entries: CompactEntry[] = [];
  const parts: Uint16Array[] = [];
  let offset = 0;
  for (const [name, v] of net.store.vars) {
    const data = (await v.data()) as Float32Array;
    parts.push(Uint16Array.from(data, toHalf));
    entries.push({ name, shape: v.shape, offset, length: data.length });
    offset += data.length;
  }
  const all = new Uint16Array(offset);
  parts.forEach((p, i) => all.set(p, entries[i].offset));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'weights.f16.bin'), new Uint8Array(all.buffer));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ format: COMPACT_FORMAT, kind: FEATNET_KIND, config: net.cfg, extra, entries }, null, 1) + '\n');
}

/** Whether `dir` holds a compact (float16) feature net. */
export function isCompactFeatureNet(dir: string): boolean {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { format?: unknown }).format === COMPACT_FORMAT;
  } catch {
    return false;
  }
}

/** Loads a feature net saved by saveFeatureNetCompact; one-line UserError naming the file for anything missing or wrong. */
export function loadFeatureNetCompact(dir: string): FeatureNet & { extra: Record<string, unknown> } {
  const cfgFile = path.join(dir, 'config.json');
  const binFile = path.join(dir, 'weights.f16.bin');
  let meta: { format: unknown; config: FeatureNetConfig; extra: Record<string, unknown>; entries: CompactEntry[] };
  let bytes: Buffer;
  try {
    meta = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    bytes = fs.readFileSync(binFile);
  } catch (e) {
    throw new UserError(`${dir}: cannot read the feature net (${(e as Error).message.split('\n')[0]})`);
  }
  if (meta.format !== COMPACT_FORMAT) throw new UserError(`${cfgFile}: format ${JSON.stringify(meta.format)}, expected ${COMPACT_FORMAT}`);
  const halves = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const total = meta.entries.reduce((s, e) => s + e.length, 0);
  if (bytes.byteLength !== 2 * total) throw new UserError(`${binFile}: ${bytes.byteLength} bytes, the index needs ${2 * total}`);
  const tensors = new Map<string, LoadedTensor>(
    meta.entries.map((e) => [e.name, { shape: e.shape, dtype: 'float32', data: Float32Array.from(halves.subarray(e.offset, e.offset + e.length), fromHalf) }]),
  );
  const store = new ParamStore(new Rng('featnet/load'));
  try {
    createFeatureNet(store, meta.config);
    assignParams(store.vars, tensors, dir);
  } catch (e) {
    store.dispose();
    throw e;
  }
  return { cfg: meta.config, store, extra: meta.extra ?? {} };
}

/** Where committed evaluators live: <repo>/pretrained/evaluator/<dataset slug>/ ('fashion-mnist/train' -> fashion-mnist). */
export function committedEvaluatorDir(root: string, datasetName: string): string {
  return path.join(root, 'pretrained', 'evaluator', slugify(datasetName.split('/')[0]) || 'dataset');
}

/**
 * The committed evaluator for `train` (pretrained/evaluator/<slug of train.name>/ under `root`), when there is one and
 * it was trained on exactly this train split (its recorded datasetDigest matches); otherwise null.
 */
export function committedEvaluatorIn(root: string, train: ImageDataset): { net: FeatureNet; dir: string; testAccuracy: number } | null {
  const dir = committedEvaluatorDir(root, train.name);
  if (!isCompactFeatureNet(dir)) return null;
  const net = loadFeatureNetCompact(dir);
  const cfg = net.cfg;
  if (net.extra.datasetDigest !== datasetDigest(train) || cfg.height !== train.height || cfg.width !== train.width || cfg.channels !== train.channels) {
    net.store.dispose();
    return null;
  }
  return { net: { cfg, store: net.store }, dir, testAccuracy: typeof net.extra.testAccuracy === 'number' ? net.extra.testAccuracy : NaN };
}

/** committedEvaluatorIn(repoRoot(), train). */
export function committedEvaluator(train: ImageDataset): { net: FeatureNet; dir: string; testAccuracy: number } | null {
  return committedEvaluatorIn(repoRoot(), train);
}
