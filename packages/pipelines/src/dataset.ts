import { loadDataset, type DatasetName } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import type { ImageDataset } from '@factorgen/formats';
import type { TokenizerConfig } from '@factorgen/tokenizer';

/** Which dataset a use case reads: a built-in one or a folder, at its own size and channels unless given. */
export type DataSource = {
  dataset: DatasetName;
  /** The dataset folder (default: the committed copy under data/; required for 'folder'). */
  data?: string;
  /** Image side in pixels (default: the dataset's own; 32 for 'folder'). */
  size?: number;
  /** Channels (default: the dataset's own; 3 for 'folder'). */
  channels?: 1 | 3;
};

const mapsShown = new Set<string>();

/**
 * Loads one split of `source`. For a folder dataset, `note` is told once per folder (per process) which index each
 * class got ("classes of DIR: 0=a, 1=b") and which entries of the folder are not used ("warning: ..."); without
 * `note` nothing is said, and a later call with one still says it.
 */
export async function loadSplit(source: DataSource, split: 'train' | 'test', note?: (line: string) => void): Promise<ImageDataset> {
  const dir = source.data;
  const ds = await loadDataset({
    name: source.dataset, dir, split, size: source.size, channels: source.channels,
    warn: (line) => (dir && note && !mapsShown.has(dir) ? note(`warning: ${line}`) : undefined),
  });
  // A folder's classes are its subfolders in natural order: say which index is which (once per folder).
  if (note && source.dataset === 'folder' && dir && !mapsShown.has(dir)) {
    mapsShown.add(dir);
    note(`classes of ${dir}: ${ds.classNames.map((c, i) => `${i}=${c}`).join(', ')}`);
  }
  return ds;
}

/** 'train' or 'test'; a UserError on field `split` otherwise. */
export function parseSplit(s: string): 'train' | 'test' {
  if (s !== 'train' && s !== 'test') throw new UserError(`expected train or test, got "${s}"`, { field: 'split' });
  return s;
}

/**
 * Throws a UserError on field `dataset` unless the images of `d` are the tokenizer's (imageSize x imageSize x
 * channels); `tokenizerDir`, when given, names the tokenizer in the message.
 */
export function checkImageShape(d: ImageDataset, cfg: TokenizerConfig, tokenizerDir?: string, shown: string = d.name): void {
  if (d.height !== cfg.imageSize || d.width !== cfg.imageSize || d.channels !== cfg.channels) {
    const tok = tokenizerDir === undefined ? 'the tokenizer' : `the tokenizer ${tokenizerDir}`;
    throw new UserError(`images are ${d.height}x${d.width}x${d.channels}, ${tok} expects ${cfg.imageSize}x${cfg.imageSize}x${cfg.channels}`, { field: 'dataset', value: shown });
  }
}
