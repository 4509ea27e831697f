import path from 'node:path';
import { UserError } from '@factorgen/tfjs-ext';
import { checkFolder } from '../fsErrors';
import { readGzip } from './gz';
import type { ImageDataset, Split } from '@factorgen/formats';
import { slugify } from '@factorgen/formats';

/** Fashion-MNIST class names, index = label. */
export const fashionMnistClassNames: readonly string[] = [
  't-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot',
];
/** The same as folder-safe slugs ("t-shirt-top", ..., "ankle-boot"). */
export const fashionMnistClassSlugs: readonly string[] = fashionMnistClassNames.map(slugify);

const IDX_IMAGES_MAGIC = 0x00000803; // unsigned bytes, 3 dimensions
const IDX_LABELS_MAGIC = 0x00000801; // unsigned bytes, 1 dimension

const hex8 = (v: number) => `0x${v.toString(16).padStart(8, '0')}`;

function header(bytes: Uint8Array, file: string, kind: 'images' | 'labels', magic: number, headerBytes: number): DataView {
  if (bytes.length < 4) throw new UserError(`${file}: truncated (expected a ${headerBytes}-byte IDX header, found ${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = view.getUint32(0, false);
  if (found !== magic) throw new UserError(`${file}: not an IDX ${kind} file (magic ${hex8(found)}, expected ${hex8(magic)})`);
  if (bytes.length < headerBytes)
    throw new UserError(`${file}: truncated (expected a ${headerBytes}-byte IDX header, found ${bytes.length} bytes)`);
  return view;
}

/**
 * Parses an (uncompressed) IDX images file: magic 0x00000803, big-endian N, H, W, then N*H*W bytes.
 * Returns pixels [N,H,W] uint8. `file` only names the source in errors.
 */
export function parseIdxImages(bytes: Uint8Array, file: string): { pixels: Uint8Array; n: number; height: number; width: number } {
  const view = header(bytes, file, 'images', IDX_IMAGES_MAGIC, 16);
  const n = view.getUint32(4, false);
  const height = view.getUint32(8, false);
  const width = view.getUint32(12, false);
  const expected = n * height * width;
  const found = bytes.length - 16;
  if (found < expected) throw new UserError(`${file}: truncated (expected ${expected} bytes of pixels, found ${found})`);
  // Copy so the (large) decompressed buffer is not kept alive by a view into it.
  return { pixels: bytes.slice(16, 16 + expected), n, height, width };
}

/** Parses an (uncompressed) IDX labels file: magic 0x00000801, big-endian N, then N bytes. */
export function parseIdxLabels(bytes: Uint8Array, file: string): Int32Array {
  const view = header(bytes, file, 'labels', IDX_LABELS_MAGIC, 8);
  const n = view.getUint32(4, false);
  const found = bytes.length - 8;
  if (found < n) throw new UserError(`${file}: truncated (expected ${n} bytes of labels, found ${found})`);
  return Int32Array.from(bytes.subarray(8, 8 + n));
}

/** File names of a Fashion-MNIST split (the original distribution's names). */
export function fashionMnistFiles(split: Split): { images: string; labels: string } {
  const prefix = split === 'train' ? 'train' : 't10k';
  return { images: `${prefix}-images-idx3-ubyte.gz`, labels: `${prefix}-labels-idx1-ubyte.gz` };
}

/**
 * Loads a Fashion-MNIST split from the four gzipped IDX files in `dir`:
 * train -> 60000 images, test -> 10000, each 28x28x1, labels 0..9 (see fashionMnistClassNames).
 */
export function loadFashionMnist(dir: string, split: Split): ImageDataset {
  const names = fashionMnistFiles(split);
  const imagesFile = path.join(dir, names.images);
  const labelsFile = path.join(dir, names.labels);
  const hint = 'Fashion-MNIST IDX .gz files are expected here';
  checkFolder(dir, hint);
  const img = parseIdxImages(readGzip(imagesFile, hint), imagesFile);
  const labels = parseIdxLabels(readGzip(labelsFile, hint), labelsFile);
  if (labels.length !== img.n)
    throw new UserError(`${labelsFile}: ${labels.length} labels but ${imagesFile} has ${img.n} images`);
  const classes = fashionMnistClassNames.length;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) throw new UserError(`${labelsFile}: label ${labels[i]} at index ${i} is out of range 0..${classes - 1}`);
  }
  return {
    name: `fashion-mnist/${split}`,
    images: img.pixels,
    n: img.n,
    height: img.height,
    width: img.width,
    channels: 1,
    labels,
    classNames: [...fashionMnistClassNames],
  };
}
