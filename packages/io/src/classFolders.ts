import * as path from 'node:path';
import { slugify } from '@factorgen/formats';
import { writePng } from './image';
import { UserError } from '@factorgen/tfjs-ext';
import { describeWriteError } from './outputs';

/** One image written by writeClassFolders: its path relative to the output folder, class and index in that class. */
export type ClassFolderRecord = { file: string; class: number; className: string; index: number };

/** Path of the index-th image of class `cls` (named `className`) in a sample folder: `<cls>-<slug>/NNNN.png`. */
export function classFolderFile(cls: number, className: string, index: number): string {
  return path.join(`${cls}-${slugify(className)}`, `${String(index).padStart(4, '0')}.png`);
}

/**
 * Writes images in the sample-folder layout every tool here reads: `out/<class index>-<class slug>/NNNN.png`,
 * numbered per class in the order given. pixels: uint8 [N,H,W,C]; labels: [N] class indices into classNames.
 * `counters` (class -> images of it already written) continues the numbering across calls, e.g. one call per batch;
 * it is updated. A failed write is a UserError naming the file.
 */
export async function writeClassFolders(
  out: string,
  pixels: Uint8Array,
  labels: ArrayLike<number>,
  classNames: string[],
  h: number,
  w: number,
  c: 1 | 3,
  counters = new Map<number, number>(),
): Promise<ClassFolderRecord[]> {
  const per = h * w * c;
  const records: ClassFolderRecord[] = [];
  for (let i = 0; i < labels.length; i++) {
    const cls = labels[i];
    const index = counters.get(cls) ?? 0;
    counters.set(cls, index + 1);
    const file = classFolderFile(cls, classNames[cls], index);
    try {
      await writePng(path.join(out, file), pixels.subarray(i * per, (i + 1) * per), h, w, c);
    } catch (e) {
      throw new UserError(`${path.join(out, file)}: ${describeWriteError(e)}`);
    }
    records.push({ file, class: cls, className: classNames[cls], index });
  }
  return records;
}
