import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '@factorgen/tfjs-ext';
import { convertChannels, resizeCover } from '@factorgen/formats';
import { loadEmoji } from './emoji';
import { loadFashionMnist } from './fashionMnist';
import { defaultMaxPixels, loadImageFolder } from './imageFolder';
import type { ImageDataset, Split } from '@factorgen/formats';
import { imageSize } from '@factorgen/formats';

export const datasetNames = ['fashion-mnist', 'emoji', 'folder'] as const;
export type DatasetName = (typeof datasetNames)[number];

export type DatasetSpec = {
  name: DatasetName;
  /** Data folder; defaults to <repo>/data/fashion-mnist or <repo>/data/emoji; required for 'folder'. */
  dir?: string;
  split: Split;
  /** Output side. Built-in sets are converted only when it differs (28 / 32); 'folder' defaults to 32. */
  size?: number;
  /** Output channels. Built-in sets are converted only when it differs (1 / 3); 'folder' defaults to 3. */
  channels?: 1 | 3;
  /** 'folder' only: input pixel limit per image (default 50 megapixels). */
  maxPixels?: number;
  /** 'folder' only: told in one line of the folder's entries that are not used. */
  warn?: (line: string) => void;
};

let cachedRoot: string | null = null;

/**
 * The repository root: the nearest folder above this module whose package.json declares workspaces.
 * Found from import.meta.url, so it works whatever the current directory is.
 */
export function repoRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { workspaces?: unknown }).workspaces) return (cachedRoot = dir);
      } catch {
        // unreadable package.json: keep climbing
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`repoRoot: no package.json with workspaces above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Default folder of a built-in dataset: <repo>/data/<name>. */
export function defaultDataDir(name: 'fashion-mnist' | 'emoji'): string {
  return path.join(repoRoot(), 'data', name);
}

/**
 * Converts every image of `ds` to [size,size,channels] with the ImageFolder rules (see convert.ts:
 * 'cover' resize + centre crop, grey <-> RGB). Returns `ds` itself when nothing changes.
 */
export function convertDataset(ds: ImageDataset, size: number, channels: 1 | 3): ImageDataset {
  if (ds.height === size && ds.width === size && ds.channels === channels) return ds;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new UserError(`size: must be an integer in 1..4096 (got ${size})`);
  if (channels !== 1 && channels !== 3) throw new UserError(`channels: must be 1 or 3 (got ${channels})`);
  const inPer = imageSize(ds);
  const outPer = size * size * channels;
  const images = new Uint8Array(ds.n * outPer);
  for (let i = 0; i < ds.n; i++) {
    const resized = resizeCover(ds.images.subarray(i * inPer, (i + 1) * inPer), ds.height, ds.width, ds.channels, size);
    images.set(convertChannels(resized, ds.channels, channels), i * outPer);
  }
  return { ...ds, images, height: size, width: size, channels };
}

/**
 * Loads a dataset split by spec. 'fashion-mnist' (28x28x1, 10 classes) and 'emoji' (32x32x3, 9 classes) come
 * from the committed files; 'folder' reads an ImageFolder tree (spec.dir) with every 10th image of each class
 * (by sorted name) as test. When spec.size / spec.channels differ from a set's native shape, images are converted.
 */
export async function loadDataset(spec: DatasetSpec): Promise<ImageDataset> {
  let ds: ImageDataset;
  switch (spec.name) {
    case 'fashion-mnist':
      ds = loadFashionMnist(spec.dir ?? defaultDataDir('fashion-mnist'), spec.split);
      break;
    case 'emoji':
      ds = loadEmoji(spec.dir ?? defaultDataDir('emoji'), spec.split);
      break;
    case 'folder':
      if (!spec.dir) throw new UserError('required with `dataset` folder (a folder of ROOT/<class>/*.png)', { field: 'data' });
      return loadImageFolder(spec.dir, {
        size: spec.size ?? 32,
        channels: spec.channels ?? 3,
        maxPixels: spec.maxPixels ?? defaultMaxPixels,
        split: spec.split,
        ...(spec.warn ? { warn: spec.warn } : {}),
      });
    default:
      throw new UserError(`dataset: unknown name ${JSON.stringify(spec.name)} (expected one of ${datasetNames.join(', ')})`);
  }
  return convertDataset(ds, spec.size ?? ds.height, spec.channels ?? ds.channels);
}
