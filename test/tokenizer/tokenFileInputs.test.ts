import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSmallFile } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { MAX_TOKEN_IDS, readTokenFile, readTokenHeader, writeTokenFile, type TokenFileHeader } from '@factorgen/io';

const root = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-tokin-'));

const header = (over: Partial<TokenFileHeader> = {}): TokenFileHeader => ({
  format: 1, tokenizerId: 'tok', tokenizerPath: 'tok', configHash: 'h', gridH: 2, gridW: 2, subCodebookSizes: [16, 16],
  classNames: ['a', 'b'], count: 2, dtype: 'uint16', source: 'test', ...over,
});

/** A token file whose header says `h` and whose body is `bodyBytes` long (sparse: zeros that take no disk). */
function sparseTokenFile(name: string, h: TokenFileHeader, bodyBytes: number): string {
  const file = path.join(work, name);
  const head = Buffer.from(JSON.stringify(h), 'utf8');
  const start = Buffer.alloc(12);
  start.write('FGTOKEN1', 0, 'latin1');
  start.writeUInt32LE(head.length, 8);
  fs.writeFileSync(file, Buffer.concat([start, head]));
  fs.truncateSync(file, 12 + head.length + bodyBytes);
  return file;
}

describe('token files are regular files, sized before they are read', () => {
  it('refuses /dev/zero (was: read until memory ran out) and a FIFO (was: a hang) in one line', () => {
    expect(() => readTokenFile('/dev/zero')).toThrow(new UserError('/dev/zero: is a character device, expected a regular file of known size'));
    const fifo = path.join(work, 'fifo.tokens');
    execFileSync('mkfifo', [fifo]);
    expect(() => readTokenHeader(fifo)).toThrow(new UserError(`${fifo}: is a FIFO (named pipe), expected a regular file of known size`));
    expect(() => readTokenFile(fifo)).toThrow(new UserError(`${fifo}: is a FIFO (named pipe), expected a regular file of known size`));
    expect(() => readSmallFile('/dev/zero')).toThrow(new UserError('/dev/zero: is a character device, expected a regular file of known size'));
  });

  it('the CLI refuses --tokens /dev/zero and a FIFO with exit 2, at once', () => {
    const fifo = path.join(work, 'cli.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [t, kind] of [['/dev/zero', 'a character device'], [fifo, 'a FIFO (named pipe)']]) {
      const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'generator', 'train', '--tokens', t, '--out', path.join(work, 'run'), '--steps', '1'], {
        cwd: root, encoding: 'utf8', timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n').at(-1)).toBe(`factorgen: --tokens ${t}: is ${kind}, expected a regular file of known size`);
    }
    expect(fs.existsSync(path.join(work, 'run'))).toBe(false);
  }, 120_000);

  it('a token file over 2 GiB: its header is checked against its size and the in-memory limit before any body is read', () => {
    // 16x16 grid, 2 sub-codebooks, uint16: 1028 bytes a record; 2.2 M records = 2.26 GB, 1.13 G ids > 2^30.
    const h = header({ gridH: 16, gridW: 16, count: 2_200_000 });
    const big = sparseTokenFile('big.tokens', h, 2_200_000 * 1028);
    const size = fs.statSync(big).size;
    expect(size).toBeGreaterThan(2 ** 31);
    const t0 = Date.now();
    expect(() => readTokenFile(big)).toThrow(
      new UserError(`${big}: 2200000 records of 512 token ids (${(size / 2 ** 30).toFixed(2)} GiB) are more than the ${MAX_TOKEN_IDS} ids a token file may hold in memory; encode fewer images (--limit) into several files`),
    );
    expect(Date.now() - t0).toBeLessThan(2000); // refused from the header, not after reading 2 GiB
    // A header that announces fewer records than a 2.3 GiB body holds: trailing bytes, from the size alone.
    const trailing = sparseTokenFile('trailing.tokens', header(), 2 ** 31 + 10);
    expect(() => readTokenHeader(trailing)).toThrow(/token file has trailing bytes \(expected \d+ bytes for 2 records, found \d+\)$/);
    // A header longer than the file.
    const short = path.join(work, 'short.tokens');
    const b = Buffer.alloc(20);
    b.write('FGTOKEN1', 0, 'latin1');
    b.writeUInt32LE(0xffffffff, 8);
    fs.writeFileSync(short, b);
    expect(() => readTokenHeader(short)).toThrow(new UserError(`${short}: truncated token file (header needs 4294967295 bytes)`));
  });

  it('a well-formed file still reads back exactly', () => {
    const file = path.join(work, 'ok.tokens');
    const h = header();
    const tokens = Int32Array.from({ length: 2 * 4 * 2 }, (_, i) => i % 16);
    writeTokenFile(file, { header: h, tokens, labels: Int32Array.from([1, 0]) });
    const back = readTokenFile(file);
    expect([...back.tokens]).toEqual([...tokens]);
    expect([...back.labels]).toEqual([1, 0]);
  });
});
