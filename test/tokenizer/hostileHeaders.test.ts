import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { printableLine } from '@factorgen/io';
import { runCli } from '@factorgen/cli/ui/run';
import { UserError } from '@factorgen/tfjs-ext';
import { readTokenHeader, type TokenFileHeader } from '@factorgen/io';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-hostile-'));
const H: TokenFileHeader = { format: 1, tokenizerId: 't', tokenizerPath: 't', configHash: 'h', gridH: 2, gridW: 2, subCodebookSizes: [16], classNames: ['a', 'b'], count: 0, dtype: 'uint16', source: 's' };

function headerOnly(name: string, h: object): string {
  const head = Buffer.from(JSON.stringify(h));
  const b = Buffer.alloc(12);
  b.write('FGTOKEN1', 0, 'latin1');
  b.writeUInt32LE(head.length, 8);
  const f = path.join(work, name);
  fs.writeFileSync(f, Buffer.concat([b, head]));
  return f;
}

describe('hostile token-file headers and names (own cases)', () => {
  it('a header with sizes past sane limits is refused naming the file (was: accepted, then "generator config: gridH …" without the file)', () => {
    const f = headerOnly('huge-grid.tokens', { ...H, gridH: 1e9 });
    expect(() => readTokenHeader(f)).toThrow(new UserError(`${f}: token file header has gridH 1000000000 (limit 256)`));
    const g = headerOnly('codes.tokens', { ...H, subCodebookSizes: [2 ** 24] });
    expect(() => readTokenHeader(g)).toThrow(new UserError(`${g}: token file header has a sub-codebook of 16777216 codes (limit 1048576)`));
  });

  it('control characters from files (a class named "a\\x1b[31m") are shown, not sent to the terminal', async () => {
    expect(printableLine('class "a\x1b[31m" and "b\u0007"')).toBe('class "a\\x1b[31m" and "b\\x07"');
    let err = '';
    let code = -1;
    await runCli(
      async () => {
        throw new UserError('--tokens F: classes [a\x1b[2J, b] differ');
      },
      { stderr: { write: (s: string) => ((err += s), true) } as unknown as NodeJS.WritableStream, exit: (c) => (code = c), argv: [] },
    );
    expect([code, err]).toEqual([2, 'factorgen: --tokens F: classes [a\\x1b[2J, b] differ\n']);
  });
});
