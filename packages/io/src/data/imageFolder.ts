import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { UserError } from '@factorgen/tfjs-ext';
import { checkFolder, describeReadError, isUtf8Name, printableName } from '../fsErrors';
import { convertChannels } from '@factorgen/formats';
import { naturalCompare, type ImageDataset, type Split } from '@factorgen/formats';

/** Image file extensions read from class folders (case-insensitive); other files are ignored. */
export const imageExtensions = ['.png', '.jpg', '.jpeg', '.webp'] as const;
/** Default cap on decoded input size (width*height), against decompression bombs. */
export const defaultMaxPixels = 50_000_000;
/** In a folder dataset, the k-th image (sorted by name) of each class is test when k % testEvery == testEvery-1. */
export const folderTestEvery = 10;

export type ImageFolderOptions = {
  /** Output side: every image is resized and centre-cropped ('cover') to size x size. */
  size: number;
  /** Output channels: 1 grey or 3 RGB; inputs are converted (grey <-> RGB, alpha flattened on white). */
  channels: 1 | 3;
  /** Inputs with more than this many pixels are rejected before decoding (default 50 megapixels). */
  maxPixels?: number;
  /** Which images to load: all (default), or the deterministic train/test split (see folderTestEvery). */
  split?: Split | 'all';
  /** Told once, in one line, of the entries of the folder that are not used (nothing is skipped without a word). */
  warn?: (line: string) => void;
};

function checkOutputShape(size: number, channels: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new UserError(`size: must be an integer in 1..4096 (got ${size})`);
  if (channels !== 1 && channels !== 3) throw new UserError(`channels: must be 1 or 3 (got ${channels})`);
}

/**
 * Decodes one image file to [size,size,channels] uint8: EXIF-oriented, alpha flattened on white,
 * resized to cover size x size and centre-cropped, converted to sRGB (3) or Rec.601 luma grey (1).
 * Corrupt/truncated files and files over `maxPixels` give a UserError naming the file.
 */
export async function decodeImage(file: string, size: number, channels: 1 | 3, maxPixels = defaultMaxPixels): Promise<Uint8Array> {
  checkOutputShape(size, channels);
  const pipeline = sharp(file, { limitInputPixels: maxPixels, failOn: 'error' })
    .rotate() // apply EXIF orientation
    .flatten({ background: '#ffffff' })
    .resize(size, size, { fit: 'cover', position: 'centre' })
    .toColourspace('srgb'); // grey is made below in JS, with the same luma as convertDataset
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    out = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0].trim();
    if (/pixel limit/i.test(msg)) {
      const meta = await sharp(file, { limitInputPixels: false }).metadata().catch(() => null);
      const dims = meta?.width && meta.height ? `${meta.width}x${meta.height} = ${meta.width * meta.height} pixels, ` : '';
      throw new UserError(`${file}: image too large (${dims}limit ${maxPixels} pixels)`);
    }
    if (/ENOENT|no such file|missing/i.test(msg)) throw new UserError(`${file}: no such file`);
    // A failure in the resize itself (a 5000000x1 PNG: "affine: output coordinates out of range") is not corruption:
    // say what could not be done to which image. Recognised by its words, not by the absence of decode words: libvips
    // sometimes reports a truncated file only as "Unknown error".
    if (/affine|coordinates|out of range|resize|shrink|reduce/i.test(msg)) {
      const meta = await sharp(file, { limitInputPixels: maxPixels }).metadata().catch(() => null);
      if (meta?.width && meta.height) {
        throw new UserError(`${file}: a ${meta.width}x${meta.height} image could not be resized to cover ${size}x${size} (${msg}); crop it to a less extreme shape`);
      }
    }
    throw new UserError(`${file}: corrupt or unreadable image (${msg})`);
  }
  const { data, info } = out;
  if (info.channels !== 3 || info.width !== size || info.height !== size)
    throw new UserError(`${file}: decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
  return convertChannels(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 3, channels);
}

/** The class folders (in natural order: "2" before "10") and image files (code-unit order) of an ImageFolder tree. */
export type FolderListing = {
  classNames: string[];
  files: { file: string; label: number; indexInClass: number }[];
  /** Entries that are not used (a file beside the class folders; in a class folder a non-image file or a folder), relative to the root. */
  ignored: string[];
};

const isDir = (p: string) => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/**
 * The names in folder `dir`, as text. UserError "<dir>: permission denied" (and the like) when it cannot be listed,
 * and for a name that is not UTF-8 (Node would turn its bytes into U+FFFD, a name that does not exist, and the entry
 * would vanish in silence): class names and image paths are stored as text, so such an entry is named and refused.
 */
function readFolder(dir: string, what: 'class folder' | 'image file'): string[] {
  let raw: Buffer[];
  try {
    raw = fs.readdirSync(dir, { encoding: 'buffer' });
  } catch (e) {
    throw new UserError(`${printableName(dir)}: ${describeReadError(e, 'folder')}`);
  }
  // Only entries that would have been used count: a folder at the root, an image file (by extension) in a class folder.
  const used = (b: Buffer): boolean => {
    if (what === 'image file') return (imageExtensions as readonly string[]).includes(path.extname(b.toString('latin1')).toLowerCase());
    try {
      return fs.statSync(Buffer.concat([Buffer.from(dir + path.sep), b])).isDirectory();
    } catch {
      return true; // cannot tell: name it rather than drop it
    }
  };
  const bad = raw.filter((b) => b[0] !== 0x2e && !isUtf8Name(b) && used(b));
  if (bad.length > 0) {
    const names = bad.map((b) => `"${printableName(b)}"`).join(', ');
    throw new UserError(`${printableName(dir)}: ${what} name${bad.length > 1 ? 's' : ''} ${names} ${bad.length > 1 ? 'are' : 'is'} not UTF-8 (names are kept as text); rename ${bad.length > 1 ? 'them' : 'it'} (e.g. convmv -f latin1 -t utf8 --notest)`);
  }
  return raw.map((b) => b.toString('utf8'));
}

/** An entry that cannot be followed (a symbolic link to nothing, a loop) is refused rather than skipped. */
function checkLink(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isSymbolicLink()) return;
  try {
    fs.statSync(p);
  } catch (e) {
    const target = (() => {
      try {
        return fs.readlinkSync(p);
      } catch {
        return '?';
      }
    })();
    const why = (e as NodeJS.ErrnoException).code === 'ELOOP' ? 'a loop of symbolic links' : `a symbolic link to ${printableName(target)}, which does not exist`;
    throw new UserError(`${printableName(p)}: ${why}; remove it or point it at a folder of images`);
  }
}

/** An image that is a FIFO or a device would block or never end in the decoder: refused, naming it. */
function checkRegular(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return; // gone: the decoder names it
  }
  if (!st.isFile()) throw new UserError(`${printableName(p)}: ${st.isFIFO() ? 'is a FIFO (named pipe)' : 'is not a regular file'}, expected an image file`);
}

/**
 * Lists root/<class>/*.{png,jpg,jpeg,webp}. Hidden entries (".x") are ignored; other entries that are not images in a
 * class folder are listed in `ignored`. UserErrors: missing root,
 * no class folders, a class folder without images, a single class (class-conditional training needs >= 2), an entry
 * whose name is not UTF-8, a dangling symbolic link.
 */
export function listImageFolder(root: string): FolderListing {
  checkFolder(root, `images are expected in ${path.join(root, '<class>')}/*.png`);
  const entries = readFolder(root, 'class folder').filter((name) => !name.startsWith('.'));
  for (const name of entries) checkLink(path.join(root, name));
  const classNames = entries
    .filter((name) => isDir(path.join(root, name)))
    .sort(naturalCompare); // "2" before "10": class indices follow the numbers people give their folders
  const ignored = entries.filter((name) => !isDir(path.join(root, name))).sort();
  if (classNames.length === 0)
    throw new UserError(`${root}: no class folders (expected ${path.join(root, '<class>')}/*.{png,jpg,jpeg,webp})`);
  const files: FolderListing['files'] = [];
  for (const [label, cls] of classNames.entries()) {
    const dir = path.join(root, cls);
    const isImage = (f: string) => (imageExtensions as readonly string[]).includes(path.extname(f).toLowerCase());
    const visible = readFolder(dir, 'image file').filter((f) => !f.startsWith('.'));
    const images = visible
      .filter(isImage)
      .filter((f) => (checkLink(path.join(dir, f)), !isDir(path.join(dir, f))))
      .filter((f) => (checkRegular(path.join(dir, f)), true))
      .sort();
    const used = new Set(images);
    for (const f of visible.sort()) if (!used.has(f)) ignored.push(`${cls}/${f}${isDir(path.join(dir, f)) ? '/' : ''}`);
    if (images.length === 0) throw new UserError(`${dir}: class folder has no images (.png, .jpg, .jpeg, .webp)`);
    images.forEach((f, k) => files.push({ file: path.join(dir, f), label, indexInClass: k }));
  }
  if (classNames.length < 2)
    throw new UserError(`${root}: only one class folder (${classNames[0]}); class-conditional training needs at least 2 classes`);
  return { classNames, files, ignored };
}

/**
 * Loads an ImageFolder tree root/<class>/*.{png,jpg,jpeg,webp} as an ImageDataset [N,size,size,channels].
 * Images of any size or channel count are CONVERTED: resized to cover size x size and centre-cropped,
 * grey <-> RGB converted, alpha flattened on white. Class names are the folder names in natural order; labels follow them.
 * With `split`, only that part is decoded (every 10th image of each class by sorted name is test).
 */
export async function loadImageFolder(root: string, opts: ImageFolderOptions): Promise<ImageDataset> {
  const { size, channels, maxPixels = defaultMaxPixels, split = 'all' } = opts;
  checkOutputShape(size, channels);
  const listing = listImageFolder(root);
  if (listing.ignored.length > 0 && opts.warn) {
    const n = listing.ignored.length;
    const shown = listing.ignored.slice(0, 5).map(printableName).join(', ') + (n > 5 ? ` and ${n - 5} more` : '');
    opts.warn(`${printableName(root)}: ${n} entr${n > 1 ? 'ies are' : 'y is'} not used (only <class>/*.{png,jpg,jpeg,webp} are images): ${shown}`);
  }
  const isTest = (k: number) => k % folderTestEvery === folderTestEvery - 1;
  const files = listing.files.filter((f) => split === 'all' || isTest(f.indexInClass) === (split === 'test'));
  if (files.length === 0)
    throw new UserError(`${root}: no ${split} images (every ${folderTestEvery}th image of each class is test; classes need >= ${folderTestEvery} images)`);

  const per = size * size * channels;
  const images = new Uint8Array(files.length * per);
  const labels = Int32Array.from(files, (f) => f.label);
  // A few decodes in flight keep sharp's thread pool busy; order is fixed by index, not completion.
  let next = 0;
  // Report the failing file with the lowest index among those tried, not whichever decode failed first.
  const failure: { index: number; error: unknown } = { index: Infinity, error: null };
  const worker = async () => {
    while (failure.index === Infinity && next < files.length) {
      const i = next++;
      try {
        images.set(await decodeImage(files[i].file, size, channels, maxPixels), i * per);
      } catch (error) {
        if (i < failure.index) Object.assign(failure, { index: i, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, files.length) }, worker));
  if (failure.index !== Infinity) throw failure.error;
  return {
    name: `folder:${path.basename(path.resolve(root))}${split === 'all' ? '' : `/${split}`}`,
    images,
    n: files.length,
    height: size,
    width: size,
    channels,
    labels,
    classNames: listing.classNames,
  };
}
