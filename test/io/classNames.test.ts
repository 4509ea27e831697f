/**
 * Class names of every script: slugs keep Unicode letters and are never empty, every folder `sample` writes is one
 * `eval samples` reads (matched by name, not only by number), numeric folder names sort naturally, and a number that
 * is an index and another class's name is refused naming both readings.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classFolderFile, writeClassFolders, listImageFolder, writePng } from '@factorgen/io';
import { naturalCompare, slugify } from '@factorgen/formats';
import { UserError } from '@factorgen/tfjs-ext';
import { parseClasses } from '@factorgen/pipelines';
import { readSampleFolder } from '@factorgen/pipelines';
import { fashionMnistClassNames } from '@factorgen/io';
import { makeImageFolder, runCliProcess } from '../robustness/fixtures';
import { inCliWords } from '../support/cliWords';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-classnames-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const message = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return inCliWords(e);
  }
  throw new Error('did not throw');
};

describe('slugs', () => {
  it('keep Unicode letters (normalized), spell symbol-only names by code point, are never empty, and are idempotent', () => {
    expect(['猫', '犬', '🐶', '🐶🐱', 'Café', 'Cafe\u0301', 'T-shirt/top', 'Travel & Places', 'Ａｂｃ', '', '  ', 'Σίσυφος'].map(slugify)).toEqual([
      '猫', '犬', 'u1f436', 'u1f436-u1f431', 'café', 'café', 't-shirt-top', 'travel-places', 'abc', 'unnamed', 'unnamed', 'σίσυφος',
    ]);
    for (const name of ['猫', '🐶', 'Cafe\u0301', 'T-shirt/top', '', 'a--b']) expect(slugify(slugify(name))).toBe(slugify(name));
    expect(fashionMnistClassNames.map(slugify)).toEqual(['t-shirt-top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']);
  });

  it('every folder sample writes is one eval samples reads, with the same labels (Unicode and emoji names)', async () => {
    const names = ['猫', '犬', '🐶', 'Café'];
    const dir = path.join(root, 'roundtrip');
    const pixels = new Uint8Array(8 * 4 * 4).map((_, i) => i % 251);
    const labels = [3, 0, 1, 2, 2, 0, 1, 3];
    await writeClassFolders(dir, pixels, labels, names, 4, 4, 1);
    expect(fs.readdirSync(dir).sort()).toEqual(['0-猫', '1-犬', '2-u1f436', '3-café']);
    // The dataset spells Café with a combining accent: the same name typed another way.
    const read = await readSampleFolder(dir, ['猫', '犬', '🐶', 'Cafe\u0301'], 4, 1);
    expect(Array.from(read.labels)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
  });
});

describe('--classes', () => {
  const animals = ['猫', '犬', '🐶', 'Café'];
  it('names of any script select their own class (two empty slugs no longer compare equal)', () => {
    expect(parseClasses('猫', animals)).toEqual([0]);
    expect(parseClasses('犬,🐶', animals)).toEqual([1, 2]);
    expect(parseClasses('cafe\u0301', animals)).toEqual([3]);
    expect(parseClasses('u1f436', animals)).toEqual([2]);
    expect(message(() => parseClasses('🐱', animals))).toBe('--classes: unknown class "🐱" (indices 0..3 or names: 猫, 犬, u1f436, café)');
  });

  it('numeric names: a number that is an index and another class is refused with both readings; index:/name: choose', () => {
    const twelve = Array.from({ length: 12 }, (_, i) => String(i + 1)); // folders 1..12, in natural order
    expect(message(() => parseClasses('2', twelve))).toBe(
      '--classes: "2" is ambiguous: index 2 is class "3", and class "2" is index 1; write index:2 or name:2',
    );
    expect(parseClasses('index:2,name:2', twelve)).toEqual([2, 1]);
    expect(parseClasses('12', twelve)).toEqual([11]); // only a name: 12 is no index
    expect(parseClasses('0', twelve)).toEqual([0]); // only an index
    const odd = ['3', '7', '10'];
    expect(parseClasses('7', odd)).toEqual([1]);
    expect(parseClasses('1', odd)).toEqual([1]); // index 1 ("7"); no class is named "1"
    expect(message(() => parseClasses('name:1', odd))).toBe('--classes: unknown class "name:1" (indices 0..2 or names: 3, 7, 10)');
    expect(parseClasses('2', ['a', 'b', 'c'])).toEqual([2]);
  });
});

describe('numeric class folders', () => {
  it('sort naturally, and the CLI prints the class map', async () => {
    expect(['10', '9', '1', 'b2', 'b10', '01', 'a'].sort(naturalCompare)).toEqual(['01', '1', '9', '10', 'a', 'b2', 'b10']);
    const data = path.join(root, 'twelve');
    await makeImageFolder(data, Object.fromEntries(Array.from({ length: 12 }, (_, i) => [String(i + 1), 10]))); // every 10th image is test
    const listing = listImageFolder(data);
    expect(listing.classNames).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
    const r = await runCliProcess(['teacher', 'train', '--dataset', 'folder', '--data', data, '--size', '8', '--channels', '1', '--steps', '1',
      '--batch', '2', '--out', path.join(root, 'teacher'), '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`classes of ${data}: 0=1, 1=2, 2=3, 3=4, 4=5, 5=6, 6=7, 7=8, 8=9, 9=10, 10=11, 11=12\n`);
  }, 120_000);
});

describe('eval samples reads folders by name', () => {
  it('refuses a folder whose number and name disagree with the dataset (renumbered), or whose name is not that class', async () => {
    const pix = new Uint8Array(4 * 4);
    const make = async (dir: string, folders: string[]) => {
      for (const f of folders) await writePng(path.join(dir, f, '0000.png'), pix, 4, 4, 1);
    };
    const good = path.join(root, 'good');
    await make(good, ['3-dress', '7', `9-${slugify('Ankle boot')}`]);
    expect(Array.from((await readSampleFolder(good, [...fashionMnistClassNames], 4, 1)).labels)).toEqual([3, 7, 9]);
    // the same samples renumbered alphabetically: "ankle boot" first
    const renumbered = path.join(root, 'renumbered');
    await make(renumbered, ['0-ankle-boot', '1-bag']);
    await expect(readSampleFolder(renumbered, [...fashionMnistClassNames], 4, 1)).rejects.toThrow(
      `${renumbered}/0-ankle-boot: the number says class 0 ("t-shirt/top") but the name says class 9 ("ankle boot"); the folders do not follow this dataset's class order`,
    );
    const unknown = path.join(root, 'unknown');
    await make(unknown, ['3-frock']);
    await expect(readSampleFolder(unknown, [...fashionMnistClassNames], 4, 1)).rejects.toThrow(
      `${unknown}/3-frock: "frock" is not the name of class 3 ("dress", folder 3-dress) in this dataset`,
    );
    expect(classFolderFile(2, '🐶', 5)).toBe(path.join('2-u1f436', '0005.png'));
  });
});

