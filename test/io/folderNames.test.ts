import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listImageFolder, printableName } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-names-'));
let n = 0;

/** A dataset root with the given class folders (names as bytes) each holding `files` (names as bytes). */
function tree(classes: Buffer[], files: Buffer[] = [Buffer.from('0.png'), Buffer.from('1.png')]): string {
  const root = path.join(work, `r${n++}`);
  fs.mkdirSync(root);
  for (const c of classes) {
    const dir = Buffer.concat([Buffer.from(root + '/'), c]);
    fs.mkdirSync(dir);
    for (const f of files) fs.writeFileSync(Buffer.concat([dir, Buffer.from('/'), f]), 'not decoded by listing');
  }
  return root;
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');

describe('every entry of a dataset folder is used or named', () => {
  it('refuses a class folder whose name is not UTF-8, naming it printably (was: dropped in silence, 2 classes trained)', () => {
    const root = tree([latin1('a'), latin1('b'), latin1('caf\xe9')]);
    expect(() => listImageFolder(root)).toThrow(
      new UserError(`${root}: class folder name "caf\\xe9" is not UTF-8 (names are kept as text); rename it (e.g. convmv -f latin1 -t utf8 --notest)`),
    );
  });

  it('with only such folders, names them all instead of saying "no class folders"', () => {
    const root = tree([latin1('caf\xe9'), latin1('na\xefve')]);
    expect(() => listImageFolder(root)).toThrow(
      new UserError(`${root}: class folder names "caf\\xe9", "na\\xefve" are not UTF-8 (names are kept as text); rename them (e.g. convmv -f latin1 -t utf8 --notest)`),
    );
  });

  it('refuses an image file whose name is not UTF-8 (was: "no such file"), but not a non-image file', () => {
    const root = tree([latin1('a'), latin1('b')], [latin1('0.png'), latin1('\xe9t\xe9.png'), latin1('notes-\xe9.txt')]);
    expect(() => listImageFolder(root)).toThrow(
      new UserError(`${path.join(root, 'a')}: image file name "\\xe9t\\xe9.png" is not UTF-8 (names are kept as text); rename it (e.g. convmv -f latin1 -t utf8 --notest)`),
    );
  });

  it('refuses a dangling class-folder symlink (was: vanished) and a dangling image symlink', () => {
    const root = tree([latin1('a'), latin1('b')]);
    fs.symlinkSync(path.join(work, 'moved-away'), path.join(root, 'c'));
    expect(() => listImageFolder(root)).toThrow(
      new UserError(`${path.join(root, 'c')}: a symbolic link to ${path.join(work, 'moved-away')}, which does not exist; remove it or point it at a folder of images`),
    );
    fs.unlinkSync(path.join(root, 'c'));
    fs.symlinkSync('gone.png', path.join(root, 'b', '2.png'));
    expect(() => listImageFolder(root)).toThrow(
      new UserError(`${path.join(root, 'b', '2.png')}: a symbolic link to gone.png, which does not exist; remove it or point it at a folder of images`),
    );
    fs.unlinkSync(path.join(root, 'b', '2.png'));
    // A symlink to a real class folder is a class.
    fs.symlinkSync(path.join(root, 'a'), path.join(root, 'c'));
    expect(listImageFolder(root).classNames).toEqual(['a', 'b', 'c']);
  });

  it('UTF-8 names in any script, and hidden entries, are unaffected', () => {
    const root = tree([Buffer.from('café'), Buffer.from('猫')]);
    fs.mkdirSync(path.join(root, '.ipynb_checkpoints'));
    fs.writeFileSync(Buffer.concat([Buffer.from(root + '/.'), latin1('\xe9')]), '');
    expect(listImageFolder(root).classNames).toEqual(['café', '猫']);
  });

  it('prints names safely: invalid bytes and control characters (terminal escapes, newlines) as \\xHH', () => {
    expect(printableName(latin1('caf\xe9'))).toBe('caf\\xe9');
    expect(printableName('a\nb\x1b[31mred')).toBe('a\\x0ab\\x1b[31mred');
    expect(printableName('猫 🐶 back\\slash')).toBe('猫 🐶 back\\\\slash');
    expect(printableName(Buffer.from([0xe2, 0x82]))).toBe('\\xe2\\x82'); // a truncated 3-byte sequence
    expect(printableName('\u2028')).toBe('\\u{2028}');
  });
});

describe('image messages name the right cause', () => {
  it('a valid 5000000x1 PNG is "could not be resized", not "corrupt"', async () => {
    const { decodeImage } = await import('@factorgen/io');
    const zlib = await import('node:zlib');
    const crc = (b: Buffer) => {
      let c = ~0;
      for (const x of b) {
        c ^= x;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
      }
      return ~c >>> 0;
    };
    const chunk = (type: string, data: Buffer) => {
      const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      const c = Buffer.alloc(4);
      c.writeUInt32BE(crc(td));
      return Buffer.concat([len, td, c]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(5_000_000, 0);
    ihdr.writeUInt32BE(1, 4);
    ihdr[8] = 8; // 8-bit grey
    const file = path.join(work, 'wide.png');
    fs.writeFileSync(file, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(5_000_001))), chunk('IEND', Buffer.alloc(0))]));
    await expect(decodeImage(file, 32, 1)).rejects.toThrow(
      new UserError(`${file}: a 5000000x1 image could not be resized to cover 32x32 (affine: output coordinates out of range); crop it to a less extreme shape`),
    );
  });

  it('lists every entry it does not use, and the loader says so in one warning line (was: skipped without a word)', async () => {
    const root = tree([Buffer.from('a'), Buffer.from('b')]);
    fs.writeFileSync(path.join(root, 'notes.txt'), 'x');
    fs.writeFileSync(path.join(root, 'a', 'README.md'), 'x');
    fs.mkdirSync(path.join(root, 'b', 'more'));
    fs.writeFileSync(path.join(root, 'b', '.DS_Store'), 'x'); // hidden: ignored by design, not listed
    const listing = listImageFolder(root);
    expect(listing.ignored).toEqual(['notes.txt', 'a/README.md', 'b/more/']);
    expect(listing.files.map((f) => path.relative(root, f.file))).toEqual(['a/0.png', 'a/1.png', 'b/0.png', 'b/1.png']);
    const { loadImageFolder } = await import('@factorgen/io');
    const lines: string[] = [];
    // The images are not decodable: the warning comes from the listing, before any decoding fails.
    await expect(loadImageFolder(root, { size: 8, channels: 1, warn: (l) => lines.push(l) })).rejects.toThrow(UserError);
    expect(lines).toEqual([`${root}: 3 entries are not used (only <class>/*.{png,jpg,jpeg,webp} are images): notes.txt, a/README.md, b/more/`]);
  });
});

