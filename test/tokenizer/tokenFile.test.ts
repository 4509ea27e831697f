import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTokenFile, readTokenHeader, writeTokenFile, tokenDtype, type TokenSet } from '@factorgen/io';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-tokens-'));

function makeSet(sizes: number[], count = 3, gridH = 2, gridW = 3): TokenSet {
  const T = gridH * gridW;
  const K = sizes.length;
  const tokens = Int32Array.from({ length: count * T * K }, (_, i) => (i * 7919) % sizes[i % K]);
  return {
    header: {
      format: 1, tokenizerId: 'abc123', tokenizerPath: 'runs/tok', configHash: 'h', gridH, gridW, subCodebookSizes: sizes,
      classNames: ['a', 'b', 'c'], count, dtype: tokenDtype(sizes), source: 'test',
    },
    tokens,
    labels: Int32Array.from({ length: count }, (_, i) => i % 3),
  };
}

describe('token file', () => {
  it('round-trips tokens and labels exactly, uint16 and int32', () => {
    for (const sizes of [[1024, 32], [70000]]) {
      const set = makeSet(sizes);
      const file = path.join(dir, `rt-${sizes.join('-')}.tokens`);
      writeTokenFile(file, set);
      const back = readTokenFile(file);
      expect(back.header).toEqual(set.header);
      expect(Array.from(back.tokens)).toEqual(Array.from(set.tokens));
      expect(Array.from(back.labels)).toEqual(Array.from(set.labels));
      expect(readTokenHeader(file)).toEqual(set.header);
      // 12 bytes + header + per record: label + 2*3 positions * K ids
      const K = sizes.length;
      const idBytes = set.header.dtype === 'uint16' ? 2 : 4;
      const headerBytes = Buffer.byteLength(JSON.stringify(set.header));
      expect(fs.statSync(file).size).toBe(12 + headerBytes + 3 * (4 + 6 * K * idBytes));
    }
  });

  it('stores each record as label, then one map per sub-codebook in raster order', () => {
    const set = makeSet([16, 8], 1, 1, 2);
    set.tokens.set([1, 2, 3, 4]); // position-major: p0=(1,2), p1=(3,4)
    const file = path.join(dir, 'layout.tokens');
    writeTokenFile(file, set);
    const buf = fs.readFileSync(file);
    const start = 12 + buf.readUInt32LE(8);
    expect(buf.readInt32LE(start)).toBe(0);
    expect([0, 1, 2, 3].map((i) => buf.readUInt16LE(start + 4 + 2 * i))).toEqual([1, 3, 2, 4]);
  });

  it('rejects a truncated file, a bad magic and out-of-range ids with one-line errors', () => {
    const set = makeSet([16, 16]);
    const file = path.join(dir, 'bad.tokens');
    writeTokenFile(file, set);
    const full = fs.readFileSync(file);
    fs.writeFileSync(file, full.subarray(0, full.length - 5));
    expect(() => readTokenFile(file)).toThrow(`${file}: token file truncated (expected ${full.length} bytes for 3 records, found ${full.length - 5})`);
    const wrong = Buffer.from(full);
    wrong.write('NOTTOKEN', 0, 'latin1');
    fs.writeFileSync(file, wrong);
    expect(() => readTokenFile(file)).toThrow(`${file}: not a factorgen token file (bad magic)`);
    const out = Buffer.from(full);
    const start = 12 + out.readUInt32LE(8);
    out.writeUInt16LE(16, start + 4 + 2 * 7); // record 0, sub-codebook 1, position 1
    fs.writeFileSync(file, out);
    expect(() => readTokenFile(file)).toThrow(`${file}: record 0, sub-codebook 1 has token id 16, outside 0..15`);
    const lab = Buffer.from(full);
    lab.writeInt32LE(3, start);
    fs.writeFileSync(file, lab);
    expect(() => readTokenFile(file)).toThrow(`${file}: record 0 has label 3, outside 0..2`);
    // errno codes in words: a missing file, a folder where a file belongs (whole file and header only)
    expect(() => readTokenFile(path.join(dir, 'missing.tokens'))).toThrow(`${path.join(dir, 'missing.tokens')}: no such file`);
    expect(() => readTokenHeader(path.join(dir, 'missing.tokens'))).toThrow(`${path.join(dir, 'missing.tokens')}: no such file`);
    expect(() => readTokenFile(dir)).toThrow(`${dir}: is a folder, expected a file`);
    expect(() => readTokenHeader(dir)).toThrow(`${dir}: is a folder, expected a file`);
  });
});
