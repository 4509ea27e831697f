/**
 * An output under a read-only mount whose folder does not exist yet: the error names the cause (EROFS), not ENOENT.
 * Node's recursive mkdir reports ENOENT there; makeFolders creates one level at a time so the true error surfaces.
 * The read-only mount is a tmpfs in a private mount namespace (`unshare --map-root-user --mount`), so the test needs
 * no root and leaves nothing mounted.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@factorgen/io';

const root = repoRoot();
const cli = path.join(root, 'apps/cli/bin/factorgen.mjs');

/** Runs the factorgen CLI with `args` while `dir` is a read-only tmpfs; `$D` in args stands for dir. */
function underReadOnly(dir: string, args: string[]): { code: number | null; err: string } {
  const quoted = args.map((a) => `'${a.replace(/\$D/g, dir)}'`).join(' ');
  const r = spawnSync('unshare', ['--map-root-user', '--mount', 'sh', '-c', `mount -t tmpfs -o ro,size=1m tmpfs '${dir}' && exec '${process.execPath}' '${cli}' ${quoted}`], {
    cwd: root, encoding: 'utf8', timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, err: r.stderr };
}

describe('outputs on a read-only mount', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-ro-'));

  it('sample and encode name EROFS for a folder not yet made (was: ENOENT)', () => {
    const cases: [string[], string][] = [
      [['sample', '--generator', 'pretrained/generator', '--per-class', '1', '--out', '$D/new/out'], `--out ${dir}/new/out`],
      [['tokenizer', 'encode', '--tokenizer', 'pretrained/tokenizer', '--limit', '10', '--out', '$D/new/x.tokens'], `--out ${dir}/new/x.tokens`],
    ];
    for (const [args, named] of cases) {
      const r = underReadOnly(dir, args);
      expect(r.code, r.err).toBe(2);
      expect(r.err.trim().split('\n').at(-1)).toBe(`factorgen: ${named}: read-only (EROFS: read-only file system)`);
    }
    // Nothing was mounted outside the namespace: the folder is still this process's writable one.
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
