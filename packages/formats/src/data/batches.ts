import { Rng } from '@factorgen/nn';
import type { ImageDataset } from './types';
import { imageSize } from './types';

// The last few epoch permutations, so consecutive steps do not reshuffle 60000 indices each time.
const permCache: { key: string; perm: Int32Array }[] = [];

/** The shuffled order of epoch `epoch` for a dataset of size n: a permutation of [0, n) from Rng(`${seed}/epoch${epoch}`). */
export function epochPermutation(n: number, epoch: number, seed: string | number): Int32Array {
  const key = `${n}|${seed}|${epoch}`;
  const hit = permCache.find((c) => c.key === key);
  if (hit) return hit.perm;
  const perm = new Rng(`${seed}/epoch${epoch}`).permutation(n);
  permCache.push({ key, perm });
  if (permCache.length > 4) permCache.shift();
  return perm;
}

/**
 * Dataset indices of training batch `step`: [batchSize]. A pure function of (n, batchSize, step, seed), so a
 * resumed run gets exactly the batches it would have had. The stream is the concatenation of per-epoch
 * permutations; batch `step` covers stream positions [step*batchSize, (step+1)*batchSize), so a batch may
 * take the tail of one epoch and the head of the next (epoch e = floor(position / n)).
 */
export function batchIndices(n: number, batchSize: number, step: number, seed: string | number): Int32Array {
  if (!(n > 0) || !(batchSize > 0) || !Number.isInteger(step) || step < 0) {
    throw new Error(`batchIndices: need n > 0, batchSize > 0, integer step >= 0 (got ${n}, ${batchSize}, ${step})`);
  }
  const out = new Int32Array(batchSize);
  const start = step * batchSize;
  for (let k = 0; k < batchSize; k++) {
    const pos = start + k;
    const epoch = Math.floor(pos / n);
    out[k] = epochPermutation(n, epoch, seed)[pos - epoch * n];
  }
  return out;
}

/** The epoch (possibly fractional) reached after `step` batches: step*batchSize/n. */
export function epochAt(n: number, batchSize: number, step: number): number {
  return (step * batchSize) / n;
}

/** Horizontal-flip decisions for batch `step`: [batchSize] of 0/1, each 1 with probability 1/2; all 0 when disabled. */
export function flipMask(batchSize: number, step: number, seed: string | number, enabled: boolean): Uint8Array {
  const mask = new Uint8Array(batchSize);
  if (!enabled) return mask;
  const rng = new Rng(`${seed}/flip/step${step}`);
  for (let k = 0; k < batchSize; k++) mask[k] = rng.next() < 0.5 ? 1 : 0;
  return mask;
}

/**
 * Copies images `indices` of `ds` into a new [B,H,W,C] buffer (B = indices.length),
 * mirrored left-right where `flip[k]` is 1.
 */
export function gatherImages(ds: ImageDataset, indices: ArrayLike<number>, flip?: Uint8Array): Uint8Array {
  const per = imageSize(ds);
  const rowBytes = ds.width * ds.channels;
  const out = new Uint8Array(indices.length * per);
  for (let k = 0; k < indices.length; k++) {
    const idx = indices[k];
    if (!(idx >= 0 && idx < ds.n)) throw new Error(`gatherImages: index ${idx} out of range 0..${ds.n - 1}`);
    const src = ds.images.subarray(idx * per, (idx + 1) * per);
    if (!flip || !flip[k]) {
      out.set(src, k * per);
      continue;
    }
    for (let y = 0; y < ds.height; y++) {
      const rowOut = k * per + y * rowBytes;
      const rowIn = y * rowBytes;
      for (let x = 0; x < ds.width; x++) {
        const from = rowIn + (ds.width - 1 - x) * ds.channels;
        const to = rowOut + x * ds.channels;
        for (let c = 0; c < ds.channels; c++) out[to + c] = src[from + c];
      }
    }
  }
  return out;
}

/** Labels of `indices`: [B]. */
export function gatherLabels(ds: ImageDataset, indices: ArrayLike<number>): Int32Array {
  const out = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const idx = indices[k];
    if (!(idx >= 0 && idx < ds.n)) throw new Error(`gatherLabels: index ${idx} out of range 0..${ds.n - 1}`);
    out[k] = ds.labels[idx];
  }
  return out;
}

/** A new dataset holding copies of images `indices` of `ds` (same classes). */
export function subset(ds: ImageDataset, indices: ArrayLike<number>, name = `${ds.name}[subset]`): ImageDataset {
  return { ...ds, name, images: gatherImages(ds, indices), labels: gatherLabels(ds, indices), n: indices.length, classNames: [...ds.classNames] };
}

/**
 * The first `perClass` indices of each class in dataset order, grouped by class (class 0's first, ...):
 * small fixed sets for evaluation and image grids. A class with fewer images contributes what it has.
 */
export function firstPerClass(ds: ImageDataset, perClass: number): Int32Array {
  const byClass: number[][] = ds.classNames.map(() => []);
  for (let i = 0; i < ds.n; i++) {
    const list = byClass[ds.labels[i]];
    if (list.length < perClass) list.push(i);
  }
  return Int32Array.from(byClass.flat());
}
