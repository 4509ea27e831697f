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

/**
 * A class name as a folder/file name: lower case, runs of anything but [a-z0-9] become one '-'
 * ("T-shirt/top" -> "t-shirt-top", "Travel & Places" -> "travel-places").
 */
export function slugify(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
