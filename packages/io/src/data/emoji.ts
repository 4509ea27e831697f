import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '@factorgen/tfjs-ext';
import { checkFolder, describeReadError } from '../fsErrors';
import { readGzip } from './gz';
import type { ImageDataset, Split } from '@factorgen/formats';

/** File names of the converted emoji set inside its folder (made by tools/src/convertEmoji.ts). */
export const emojiFiles = { meta: 'emoji32.json', pixels: 'emoji32.bin.gz' } as const;

/**
 * emoji32.json: describes emoji32.bin.gz, the gzipped [count,size,size,3] uint8 RGB pixels.
 * Images are ordered by class, then by Unicode sort order; `testIndices` (ascending) are the test split.
 */
export type EmojiMeta = {
  format: 'factorgen-emoji-v1';
  source: string;
  size: number;
  channels: 3;
  count: number;
  classNames: string[];
  labels: number[];
  names: string[];
  testIndices: number[];
  splitRule: string;
  skipped: string;
};

/**
 * Loads the committed emoji set (Noto emoji, 32x32 RGB on white, labelled by Unicode category) from `dir`.
 * `split` picks the train images or the fixed test images (every 10th of each class).
 */
export function loadEmoji(dir: string, split: Split): ImageDataset {
  const metaFile = path.join(dir, emojiFiles.meta);
  const pixelsFile = path.join(dir, emojiFiles.pixels);
  checkFolder(dir, `${emojiFiles.meta} and ${emojiFiles.pixels} are expected here`);
  let meta: EmojiMeta;
  try {
    meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as EmojiMeta;
  } catch (e) {
    throw new UserError(`${metaFile}: ${e instanceof SyntaxError ? `not valid JSON (${e.message})` : describeReadError(e)}`);
  }
  if (meta.format !== 'factorgen-emoji-v1') throw new UserError(`${metaFile}: not an emoji dataset description (format ${JSON.stringify(meta.format)})`);
  if (meta.labels.length !== meta.count) throw new UserError(`${metaFile}: ${meta.labels.length} labels for ${meta.count} images`);
  const all = readGzip(pixelsFile);
  const per = meta.size * meta.size * meta.channels;
  if (all.length !== meta.count * per)
    throw new UserError(`${pixelsFile}: truncated (expected ${meta.count * per} bytes of pixels, found ${all.length})`);

  const isTest = new Uint8Array(meta.count);
  for (const i of meta.testIndices) isTest[i] = 1;
  const keep: number[] = [];
  for (let i = 0; i < meta.count; i++) if ((isTest[i] === 1) === (split === 'test')) keep.push(i);

  const images = new Uint8Array(keep.length * per);
  const labels = new Int32Array(keep.length);
  keep.forEach((src, dst) => {
    images.set(all.subarray(src * per, (src + 1) * per), dst * per);
    labels[dst] = meta.labels[src];
  });
  return {
    name: `emoji/${split}`,
    images,
    n: keep.length,
    height: meta.size,
    width: meta.size,
    channels: 3,
    labels,
    classNames: [...meta.classNames],
  };
}
