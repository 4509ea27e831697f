import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classBalancedRows } from '@factorgen/formats';
import { writeTokenFile } from '@factorgen/io';

const root = path.resolve(__dirname, '../..');

describe('encode --limit takes a class-balanced subset', () => {
  it('a folder dataset grouped by class (a:18, b:2, c:10) limited to 20 gives every class its share (was: {a:18, b:2, c:0})', () => {
    const labels = [...Array(18).fill(0), ...Array(2).fill(1), ...Array(10).fill(2)];
    const rows = classBalancedRows(labels, 3, 20);
    const counts = [0, 1, 2].map((c) => [...rows].filter((r) => labels[r] === c).length);
    expect(counts).toEqual([9, 2, 9]); // b has only 2: the other two share the rest
    expect([...rows]).toEqual([...rows].sort((a, b) => a - b)); // dataset order
    expect([...classBalancedRows([0, 1, 0, 1, 2, 2], 3, 3)]).toEqual([0, 1, 4]); // the first of each class
    expect(classBalancedRows([0, 1], 2, 10).length).toBe(2);
  });
});

describe('generator train warns when a class has no sequences', () => {
  it('names the classes the token file lacks', () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-nocls-'));
    const file = path.join(work, 'two-of-three.tokens');
    const count = 8;
    writeTokenFile(file, {
      header: { format: 1, tokenizerId: 't', tokenizerPath: 't', configHash: 'h', gridH: 2, gridW: 2, subCodebookSizes: [4, 4], classNames: ['a', 'b', 'c'], count, dtype: 'uint16', source: 'test' },
      tokens: Int32Array.from({ length: count * 4 * 2 }, (_, i) => i % 4),
      labels: Int32Array.from({ length: count }, (_, i) => i % 2), // no class c
    });
    const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'generator', 'train', '--tokens', file, '--out', path.join(work, 'run'),
      '--steps', '1', '--batch', '2', '--width', '8', '--depth', '1', '--heads', '2', '--val-limit', '1'], { cwd: root, encoding: 'utf8', timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.split('\n')).toContain(`warning: --tokens ${file}: no sequences of 1 of 3 classes (c); samples of this class will be noise`);
  }, 200_000);
});
