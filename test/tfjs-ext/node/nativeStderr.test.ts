/**
 * withNativeStderrQuiet: what native code writes to file descriptor 2 inside it (Dawn's warnings) is dropped, and
 * stderr works as before afterwards; stderr redirected to a file keeps everything, in order. fs.writeSync(2, ...) stands in for native code: it
 * writes to the descriptor itself, not through process.stderr.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../../..');
const script = `
  import * as fs from 'node:fs';
  import { withNativeStderrQuiet } from '@factorgen/tfjs-ext/node';
  process.stderr.write('before\\n');
  const v = await withNativeStderrQuiet(async () => { fs.writeSync(2, 'native chatter\\n'); return 7; });
  process.stderr.write('after ' + v + '\\n');
  fs.writeSync(2, 'fd 2 after\\n');
`;

/**
 * Runs the script with stderr on a file descriptor, or 'pipe': a shell pipeline's pipe (`2>&1 >/dev/null | cat`), as in
 * a terminal. (Node's own 'pipe' stdio is a socket, which cannot be reopened: there the chatter stays.)
 */
function run(stderr: 'pipe' | number, env: Record<string, string> = {}): string {
  const opts = { cwd: root, encoding: 'utf8' as const, timeout: 120_000, env: { ...process.env, FACTORGEN_VERBOSE: '', FACTORGEN_SCRIPT: script, ...env } };
  const r = stderr === 'pipe'
    ? spawnSync('sh', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$FACTORGEN_SCRIPT" 2>&1 >/dev/null | cat`], opts)
    : spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { ...opts, stdio: ['ignore', 'pipe', stderr] });
  expect(r.status, r.stderr ?? '').toBe(0);
  return stderr === 'pipe' ? r.stdout : '';
}

describe('withNativeStderrQuiet', () => {
  it('drops what is written to fd 2 inside it; stderr (a pipe) works after', () => {
    expect(run('pipe')).toBe('before\nafter 7\nfd 2 after\n');
  });

  it('stderr redirected to a file (a log): kept as written, and what the shell writes after it overwrites nothing', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fg-stderr-')), 'err.log');
    // As a newcomer's script logs: the file is opened once by the shell and shared with the next writer.
    const r = spawnSync('sh', ['-c', `{ "${process.execPath}" --import tsx --input-type=module -e "$FACTORGEN_SCRIPT"; echo AFTER >&2; } 2>"${file}"`], {
      cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, FACTORGEN_VERBOSE: '', FACTORGEN_SCRIPT: script },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toBe('before\nnative chatter\nafter 7\nfd 2 after\nAFTER\n');
  });

  it('FACTORGEN_VERBOSE=1 keeps it', () => {
    expect(run('pipe', { FACTORGEN_VERBOSE: '1' })).toBe('before\nnative chatter\nafter 7\nfd 2 after\n');
  });
});
