import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '@factorgen/nn';
import { UserError } from '@factorgen/tfjs-ext';
import { decodeImage, describeReadError } from '@factorgen/io';
import { slugify, subset } from '@factorgen/formats';
import type { ImageDataset } from '@factorgen/formats';
import { extractFeatures, fidDim } from '@factorgen/eval';
import type { FeatureNet } from '@factorgen/eval';
import { accuracy, argmaxRows, featureStats, frechetDistance, perClassAccuracy, precisionRecall, psnr, psnrGlobal, ssimWhereDefined } from '@factorgen/eval';
import type { FeatureMatrix, GaussianStats } from '@factorgen/eval';
import { meanHueError, type HueError } from '@factorgen/eval';

/** A dataset's features under one feature net, with their Gaussian statistics. */
type Extracted = { features: FeatureMatrix; logits: Float32Array; stats: GaussianStats };

// Reference sets (the real test split) are evaluated many times against one frozen net: remember their features.
const memo = new WeakMap<FeatureNet['store'], WeakMap<ImageDataset, Extracted>>();

async function extract(net: FeatureNet, ds: ImageDataset, remember: boolean): Promise<Extracted> {
  const known = memo.get(net.store)?.get(ds);
  if (known) return known;
  const { features, logits } = await extractFeatures(net, ds);
  const matrix: FeatureMatrix = { n: ds.n, d: fidDim(net.cfg), data: features };
  const out = { features: matrix, logits, stats: featureStats(matrix) };
  if (remember) {
    if (!memo.has(net.store)) memo.set(net.store, new WeakMap());
    memo.get(net.store)!.set(ds, out);
  }
  return out;
}

/** Rows `indices` of a feature matrix. */
function selectRows(x: FeatureMatrix, indices: ArrayLike<number>): FeatureMatrix {
  const data = new Float32Array(indices.length * x.d);
  for (let i = 0; i < indices.length; i++) data.set(x.data.subarray(indices[i] * x.d, (indices[i] + 1) * x.d), i * x.d);
  return { n: indices.length, d: x.d, data };
}

/** `n` images of `ds` drawn without replacement by a seeded permutation (the same n and seed give the same subset). */
export function randomSubset(ds: ImageDataset, n: number, seed = 0): ImageDataset {
  if (n > ds.n) throw new UserError(`${ds.name}: asked for ${n} images, it has ${ds.n}`);
  const order = new Rng(`eval/subset/${seed}`).permutation(ds.n).subarray(0, n);
  return subset(ds, order, `${ds.name}[${n}]`);
}

function checkGeometry(a: ImageDataset, b: ImageDataset): void {
  if (a.height !== b.height || a.width !== b.width || a.channels !== b.channels) {
    throw new UserError(`${a.name}: images are ${a.height}x${a.width}x${a.channels}, ${b.name} has ${b.height}x${b.width}x${b.channels}`);
  }
}

export type SampleMetrics = {
  fid: number;
  classAccuracy: number;
  /** per class c: fraction of the samples conditioned on c that the feature net classifies as c (NaN when none) */
  perClassAccuracy: number[];
  precision: number;
  recall: number;
  n: number;
};

export type EvalOptions = {
  /** k of the k-NN radii for precision/recall (default 3). */
  k?: number;
  /** Seed of the real subset used for precision/recall (default 0). */
  seed?: number;
};

/**
 * Scores generated `samples` (labels = the class each was conditioned on) against the real `test` split:
 * - fid: Fréchet distance of feature-net features, samples vs the whole test split;
 * - classAccuracy: fraction of samples the feature net classifies as their conditioning class;
 * - precision/recall (Kynkäänniemi et al.): against a seeded random test subset of the same size as `samples`,
 *   because k-NN radii shrink with set size and unequal sets would skew the two numbers.
 * The test split's features are remembered per (net, dataset object), so repeated calls are cheap.
 */
export async function evalSamples(samples: ImageDataset, test: ImageDataset, net: FeatureNet, opts: EvalOptions = {}): Promise<SampleMetrics> {
  checkGeometry(samples, test);
  const k = opts.k ?? 3;
  if (samples.n <= k) throw new UserError(`${samples.name}: ${samples.n} samples; need more than k=${k} for precision/recall`);
  // Precision/recall compare k-NN radii within a real subset as large as the samples: a small test split (a folder
  // dataset's test split is every 10th image of each class) must have more than k images too.
  if (test.n <= k) {
    throw new UserError(`${test.name}: the test split has ${test.n} image${test.n === 1 ? '' : 's'}; precision/recall need more than k=${k} (a folder dataset's test split is every 10th image of each class)`);
  }
  const real = await extract(net, test, true);
  const fake = await extract(net, samples, false);
  const fid = frechetDistance(fake.stats, real.stats);
  const predicted = argmaxRows(fake.logits, samples.n, net.cfg.classes);
  const classAccuracy = accuracy(predicted, samples.labels);
  const perClass = perClassAccuracy(predicted, samples.labels, net.cfg.classes);
  const m = Math.min(samples.n, test.n);
  const realRows = new Rng(`eval/pr/${opts.seed ?? 0}`).permutation(test.n).subarray(0, m);
  const { precision, recall } = precisionRecall(selectRows(real.features, realRows), fake.features, k);
  return { fid, classAccuracy, perClassAccuracy: perClass, precision, recall, n: samples.n };
}

/**
 * The real-data floor: the same metrics as evalSamples for `trainSubset` (real train images, e.g. randomSubset(train, n))
 * in place of samples — what a perfect generator would score at this sample count.
 */
export async function realFloor(
  trainSubset: ImageDataset,
  test: ImageDataset,
  net: FeatureNet,
  opts: EvalOptions = {},
): Promise<{ fid: number; precision: number; recall: number; classAccuracy: number }> {
  const m = await evalSamples(trainSubset, test, net, opts);
  return { fid: m.fid, precision: m.precision, recall: m.recall, classAccuracy: m.classAccuracy };
}

/**
 * Below this many samples (or below the FID feature dimension, where the sample covariance is singular) an FID is
 * mostly small-sample bias. Measured with the committed Fashion-MNIST evaluator (160-d features; README): the real-data
 * floor, random train images vs the test split, is ~510 at n = 10, ~100 at 80, ~47 at 160, ~14 at 500, ~7 at 1000 and
 * 1.15 at 10000 (about 7000 / n), and differs by up to 1.6x between random subsets of 40.
 */
export const minFidSamples = 500;

/**
 * The one-line warning `eval samples` prints when `n` samples are too few for an FID to mean much on its own
 * (n < max(minFidSamples, d), d = FID feature dimension); null otherwise. `floorFid` is the real-data floor at the
 * same n, which is what the FID compares with.
 */
export function smallSampleFidWarning(n: number, d: number, floorFid: number): string | null {
  const min = Math.max(minFidSamples, d);
  if (n >= min) return null;
  return (
    `warning: FID of only ${n} samples (fewer than ${min}) is mostly small-sample bias: real images score ${floorFid.toFixed(1)} at this n ` +
    `(realFloor, same n); compare fid with realFloor.fid or with FIDs of ${n} samples, not with FIDs of other sample counts`
  );
}

/** What evalRecon measures; see there. */
export type ReconMetrics = { rfid: number; psnrGlobalMse: number; psnrPerImageMean: number; /** null for images under 11x11 */ ssim: number | null; hueError?: HueError };

/**
 * Reconstruction quality of `recon` against `orig` (same images, same order):
 * rfid = Fréchet distance of their features; psnrGlobalMse = 10 log10(255^2 / MSE over every pixel of the set) (dB);
 * psnrPerImageMean = the mean of per-image PSNRs (dB; higher than the global figure, as easy images weigh in
 * logarithmically); ssim = mean SSIM; hueError (RGB only) = meanHueError's mean circular hue difference over coloured
 * pixels and the share of them turned grey.
 */
export async function evalRecon(orig: ImageDataset, recon: ImageDataset, net: FeatureNet): Promise<ReconMetrics> {
  checkGeometry(recon, orig);
  if (orig.n !== recon.n) throw new UserError(`${recon.name}: ${recon.n} reconstructions for ${orig.n} originals`);
  const a = await extract(net, orig, true);
  const b = await extract(net, recon, false);
  return {
    rfid: frechetDistance(b.stats, a.stats),
    psnrGlobalMse: psnrGlobal(orig.images, recon.images),
    psnrPerImageMean: psnr(orig.images, recon.images, orig.n),
    ssim: ssimWhereDefined(orig.images, recon.images, { n: orig.n, height: orig.height, width: orig.width, channels: orig.channels }),
    ...(orig.channels === 3 ? { hueError: meanHueError(orig.images, recon.images, 3) } : {}),
  };
}

const CLASS_FOLDER = /^(\d+)(?:-(.*))?$/;
const LAYOUT = 'expected <index>-<slug>/ folders of PNGs, e.g. 7-sneaker/0003.png';

/**
 * Whether a sample folder holds less than its sample run planned: `factorgen sample` records every image it will
 * write in the folder's manifest (.factorgen.json) before writing them, so a killed run leaves fewer PNGs than listed.
 * Returns one warning line (the folder named by its `field`, backquoted) naming how many are present and which class folders are empty, or null when complete (or
 * when the folder has no factorgen manifest: made by another tool, nothing to compare with).
 */
export function partialSampleFolderWarning(dir: string, field = 'samples'): string | null {
  let planned: string[];
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, '.factorgen.json'), 'utf8')) as { kind?: string; paths?: unknown };
    if (m.kind !== 'samples' || !Array.isArray(m.paths)) return null;
    planned = m.paths.filter((p): p is string => typeof p === 'string' && p.endsWith('.png') && p.includes('/'));
  } catch {
    return null;
  }
  const missing = planned.filter((p) => !fs.existsSync(path.join(dir, p)));
  if (missing.length === 0) return null;
  const byClass = new Map<string, { planned: number; present: number }>();
  for (const p of planned) {
    const c = p.split('/')[0];
    const e = byClass.get(c) ?? { planned: 0, present: 0 };
    e.planned++;
    byClass.set(c, e);
  }
  for (const p of planned) if (!missing.includes(p)) byClass.get(p.split('/')[0])!.present++;
  const empty = [...byClass].filter(([, e]) => e.present === 0).map(([c]) => c);
  const emptyText = empty.length ? `; ${empty.length} class folder${empty.length > 1 ? 's are' : ' is'} empty (${empty.slice(0, 4).join(', ')}${empty.length > 4 ? ', …' : ''})` : '';
  return `warning: \`${field}\` ${dir}: partial: ${planned.length - missing.length} of the ${planned.length} images its sample run planned are present${emptyText}; the run was interrupted, so these scores are of a partial set`;
}

/**
 * Reads generated samples laid out as dir/<classIndex>-<slug>/*.png (e.g. 7-sneaker/0003.png) into an ImageDataset
 * [N,size,size,channels]; the label is the folder's index prefix. Files at the top level are ignored; PNGs are decoded
 * like dataset images (shared decodeImage: other sizes are cover-resized, grey/RGB converted). UserError (one line)
 * for a missing/empty folder, a folder name that does not parse, an index outside classNames, a class folder
 * without PNGs, or an undecodable PNG.
 */
export async function readSampleFolder(dir: string, classNames: string[], size: number, channels: 1 | 3): Promise<ImageDataset> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new UserError(`${dir}: ${describeReadError(e, 'folder')}`);
  }
  // Hidden folders (.ipynb_checkpoints, .git) are not class folders: editors and notebooks make them.
  const classDirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  if (classDirs.length === 0) throw new UserError(`${dir}: no class folders (${LAYOUT})`);
  const files: { file: string; label: number }[] = [];
  const parsed = classDirs.map((name) => {
    const m = CLASS_FOLDER.exec(name);
    if (!m) throw new UserError(`${path.join(dir, name)}: folder name does not parse as <index>-<slug> (${LAYOUT})`);
    const label = Number(m[1]);
    if (label >= classNames.length) {
      throw new UserError(`${path.join(dir, name)}: class index ${label} is out of range 0..${classNames.length - 1}`);
    }
    // The name, when the folder has one, must be that class's: renumbered folders would score against the wrong class.
    const slug = m[2] ? slugify(m[2]) : null;
    if (slug !== null && slug !== slugify(classNames[label])) {
      const other = classNames.findIndex((c) => slugify(c) === slug);
      throw new UserError(
        other >= 0
          ? `${path.join(dir, name)}: the number says class ${label} ("${classNames[label]}") but the name says class ${other} ("${classNames[other]}"); the folders do not follow this dataset's class order`
          : `${path.join(dir, name)}: "${m[2]}" is not the name of class ${label} ("${classNames[label]}", folder ${label}-${slugify(classNames[label])}) in this dataset`,
      );
    }
    return { name, label };
  });
  parsed.sort((a, b) => a.label - b.label || (a.name < b.name ? -1 : 1));
  for (const { name, label } of parsed) {
    const sub = path.join(dir, name);
    const pngs = fs
      .readdirSync(sub)
      .filter((f) => f.toLowerCase().endsWith('.png'))
      .sort();
    if (pngs.length === 0) throw new UserError(`${sub}: no .png files (${LAYOUT})`);
    for (const f of pngs) files.push({ file: path.join(sub, f), label });
  }
  const pixels = size * size * channels;
  const images = new Uint8Array(files.length * pixels);
  const labels = Int32Array.from(files, (f) => f.label);
  // Decoded like dataset folders (shared decodeImage): cover-resized to size x size, alpha on white, grey as luma.
  const decode = async (i: number): Promise<void> => {
    images.set(await decodeImage(files[i].file, size, channels), i * pixels);
  };
  // A few decodes in flight at once: sharp works off the main thread, but thousands at once would exhaust memory.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) await decode(next++);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { name: dir, images, n: files.length, height: size, width: size, channels, labels, classNames: [...classNames] };
}
