import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { partialSampleFolderWarning, readSampleFolder } from '@factorgen/pipelines';
import { inFlagWords } from '@factorgen/cli/ui/errors';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-partial-'));
const png = () => sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toBuffer();

/** A sample folder whose manifest plans `perClass` images of each class and which holds `present` of them per class. */
async function sampleFolder(name: string, classes: string[], perClass: number, present: number[]): Promise<string> {
  const dir = path.join(work, name);
  const planned: string[] = [];
  const img = await png();
  for (const [c, cls] of classes.entries()) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const f = `${cls}/${String(i).padStart(4, '0')}.png`;
      planned.push(f);
      if (i < present[c]) fs.writeFileSync(path.join(dir, f), img);
    }
  }
  fs.writeFileSync(path.join(dir, '.factorgen.json'), JSON.stringify({ factorgen: 1, kind: 'samples', paths: ['grid.png', 'samples.json', ...planned] }));
  return dir;
}

describe('a reader of a sample folder says when it is partial', () => {
  it('warns when a killed sample run left fewer images than it planned, naming the empty class folders', async () => {
    const classes = ['0-a', '1-b', '2-c'];
    const dir = await sampleFolder('killed', classes, 4, [4, 2, 0]);
    // The library names the folder by its field; the CLI says --samples.
    expect(partialSampleFolderWarning(dir)?.startsWith(`warning: \`samples\` ${dir}: partial:`)).toBe(true);
    expect(inFlagWords(partialSampleFolderWarning(dir)!)).toBe(
      `warning: --samples ${dir}: partial: 6 of the 12 images its sample run planned are present; 1 class folder is empty (2-c); the run was interrupted, so these scores are of a partial set`,
    );
    const full = await sampleFolder('full', classes, 2, [2, 2, 2]);
    expect(partialSampleFolderWarning(full)).toBe(null);
    fs.rmSync(path.join(full, '.factorgen.json'));
    expect(partialSampleFolderWarning(full)).toBe(null); // another tool's folder: nothing to compare with
  });

  it('ignores hidden folders such as .ipynb_checkpoints (was: refused as a class folder that does not parse)', async () => {
    const dir = await sampleFolder('notebook', ['0-a', '1-b'], 1, [1, 1]);
    fs.mkdirSync(path.join(dir, '.ipynb_checkpoints'));
    const ds = await readSampleFolder(dir, ['a', 'b'], 8, 1);
    expect([ds.n, [...ds.labels]]).toEqual([2, [0, 1]]);
  });
});

describe('a failed image write says why and leaves no partial file', () => {
  it('names the cause (ENOSPC from a full disk; was: "write error") and leaves no 0-byte PNG', async () => {
    const { describeWriteError, writeClassFolders } = await import('@factorgen/io');
    const { UserError } = await import('@factorgen/tfjs-ext');
    // /dev/full fails every write with ENOSPC, as a full disk does.
    let err: unknown;
    try {
      fs.writeFileSync('/dev/full', 'x');
    } catch (e) {
      err = e;
    }
    expect(describeWriteError(err)).toBe('cannot write (ENOSPC: no space left on device)');
    const out = path.join(work, 'blocked');
    fs.mkdirSync(path.join(out, '0-a', '0000.png'), { recursive: true }); // a folder where the image goes
    await expect(writeClassFolders(out, new Uint8Array(8 * 8), [0], ['a'], 8, 8, 1)).rejects.toThrow(
      new UserError(`${path.join(out, '0-a', '0000.png')}: is a folder, expected a file`),
    );
    expect(fs.readdirSync(path.join(out, '0-a'))).toEqual(['0000.png']); // no temporary file left
  });
});
