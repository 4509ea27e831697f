/**
 * An in-memory labelled image set: `images` is [N,H,W,C] uint8, row-major (NHWC), 0..255.
 * `labels[i]` indexes `classNames`; `channels` is 1 (grey) or 3 (RGB).
 */
export type ImageDataset = {
  name: string;
  images: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: 1 | 3;
  labels: Int32Array;
  classNames: string[];
};

export type Split = 'train' | 'test';

/** Bytes per image of `ds` (H*W*C). */
export function imageSize(ds: Pick<ImageDataset, 'height' | 'width' | 'channels'>): number {
  return ds.height * ds.width * ds.channels;
}

/** A class name compared as typed: NFKC-normalized (so "é" typed as one or two code points is the same) and lower case. */
export function classKey(name: string): string {
  return name.normalize('NFKC').toLowerCase().normalize('NFKC');
}

/**
 * A class name as a folder/file name: classKey, then runs of anything but Unicode letters, marks and digits become one
 * '-' ("T-shirt/top" -> "t-shirt-top", "Travel & Places" -> "travel-places", "猫" -> "猫", "Café" -> "café"). Never
 * empty: a name of symbols only is spelled by its code points ("🐶" -> "u1f436"), an empty name is "unnamed".
 * Idempotent: slugify(slugify(x)) === slugify(x).
 */
export function slugify(name: string): string {
  const slug = classKey(name)
    .replace(/[^\p{L}\p{M}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '');
  if (slug) return slug;
  const points = [...name.normalize('NFKC')].filter((ch) => !/\s/u.test(ch)).map((ch) => `u${ch.codePointAt(0)!.toString(16)}`);
  return points.length > 0 ? points.join('-') : 'unnamed';
}

/**
 * Natural order of names: runs of digits compare by value ("2" < "10"), the rest by code unit; names equal that way
 * ("01" and "1") fall back to code-unit order, so the order is total and the same on every machine (no locale).
 */
export function naturalCompare(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const [x, y] = [ra[i], rb[i]];
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const [nx, ny] = [x.replace(/^0+(?=\d)/, ''), y.replace(/^0+(?=\d)/, '')];
      if (nx.length !== ny.length) return nx.length - ny.length;
      if (nx !== ny) return nx < ny ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  if (ra.length !== rb.length) return ra.length - rb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Row indices of a class-balanced subset of `n` items (of labels in 0..numClasses-1): classes take turns, each giving
 * its next item in dataset order, until n are taken (a class that runs out drops from the turns). Returned in
 * dataset order. A "first n" of a folder dataset, whose files are grouped by class, would keep the first classes only
 * ({a: 18, b: 2, c: 0}); this gives {a: 7, b: 7, c: 6}.
 */
export function classBalancedRows(labels: ArrayLike<number>, numClasses: number, n: number): Int32Array {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]]?.push(i);
  const taken: number[] = [];
  const next = new Array<number>(numClasses).fill(0);
  while (taken.length < Math.min(n, labels.length)) {
    let any = false;
    for (let c = 0; c < numClasses && taken.length < n; c++) {
      if (next[c] < byClass[c].length) {
        taken.push(byClass[c][next[c]++]);
        any = true;
      }
    }
    if (!any) break;
  }
  return Int32Array.from(taken.sort((a, b) => a - b));
}
