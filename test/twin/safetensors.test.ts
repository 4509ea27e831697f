/**
 * The twin's own safetensors reader (python/factorgen_twin/safetensors.py, needs numpy only but runs on Debian's
 * python3 with torch like the rest of the twin): files built byte by byte here, the listing it prints, and the one
 * line (exit 2) it gives for each kind of hostile file.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith, systemPython } from '../support/components';

const repoRoot = path.resolve(__dirname, '../..');
let work: string;

/** 8-byte little-endian header length (or `claimed`), the header text, then the data bytes. */
function stFile(name: string, header: string, data: Buffer, claimed?: bigint): string {
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(claimed ?? BigInt(h.length));
  const file = path.join(work, name);
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}

function inspect(file: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(systemPython, ['-m', 'factorgen_twin.safetensors', file], {
    cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'python') },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const f32 = (...xs: number[]) => Buffer.from(new Float32Array(xs).buffer);

describeWith('torch', "the twin's safetensors reader", () => {
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-twin-st-'));
  });
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('reads a file built byte by byte: F32 and I32 tensors, offsets relative to the data, metadata', () => {
    const header = JSON.stringify({
      __metadata__: { step: '7' },
      'm/a': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
      b: { dtype: 'I32', shape: [3], data_offsets: [16, 28] },
    });
    const data = Buffer.concat([f32(1, 2, 3, 4), Buffer.from(new Int32Array([5, -6, 7]).buffer)]);
    const file = stFile('ok.safetensors', header, data);
    const r = inspect(file);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(`${file}\tm/a\tF32\t[2, 2]\n${file}\tb\tI32\t[3]\n${file}\t__metadata__\t{"step": "7"}\n`);
  });

  it('a hostile file is one line and exit 2, naming the file and the cause', () => {
    const one = JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
    const cases: [string, string, Buffer, bigint | undefined, string][] = [
      ['long.safetensors', one, f32(1, 2), 10_000n, `safetensors header of 10000 bytes is longer than the file (${8 + one.length + 8} bytes)`],
      ['huge.safetensors', one, f32(1, 2), 200_000_000n, 'safetensors header of 200000000 bytes is over the 100 MB limit'],
      ['json.safetensors', '{"a": ', f32(1, 2), undefined, 'safetensors header is not valid JSON (Expecting value: line 1 column 7 (char 6))'],
      ['dtype.safetensors', one.replace('F32', 'F8_E4M3'), f32(1, 2), undefined, `tensor 'a' has unsupported dtype "F8_E4M3"`],
      ['shape.safetensors', one.replace('[2]', '[3]'), f32(1, 2), undefined, "tensor 'a' has 8 bytes but shape [3] of F32 needs 12"],
      ['range.safetensors', one.replace('[0,8]', '[4,12]'), f32(1, 2), undefined, "tensor 'a' (bytes 4..12) is out of range (data has 8 bytes)"],
      [
        'overlap.safetensors',
        JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }),
        f32(1, 2), undefined, "tensor 'b' overlaps another tensor's bytes",
      ],
      ['trailing.safetensors', one, f32(1, 2, 3), undefined, '4 trailing bytes after the last tensor'],
    ];
    for (const [name, header, data, claimed, cause] of cases) {
      const file = stFile(name, header, data, claimed);
      const r = inspect(file);
      expect([r.code, r.stdout, r.stderr], name).toEqual([2, '', `factorgen_twin: ${file}: ${cause}\n`]);
    }
  });
});
