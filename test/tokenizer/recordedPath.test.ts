import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '@factorgen/io';
import { recordedPathCandidates, recordedTokenizerDir } from '@factorgen/pipelines';
import { findTokenizerDir } from '@factorgen/pipelines';
import { type GeneratorProvenance } from '@factorgen/generator';

const root = path.resolve(__dirname, '../..');

describe('a relative tokenizer path recorded in a file is resolved against that file first', () => {
  it('finds the tokenizer beside a moved token file from any working directory (was: resolved against the working directory)', () => {
    const moved = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-moved-'));
    fs.mkdirSync(path.join(moved, 'tok'));
    const tokens = path.join(moved, 'train.tokens');
    expect(recordedPathCandidates('tok', tokens)).toEqual([path.join(moved, 'tok'), 'tok']);
    expect(recordedTokenizerDir('tok', tokens)).toBe(path.join(moved, 'tok'));
    expect(recordedPathCandidates('/abs/tok', tokens)).toEqual(['/abs/tok']);
    expect(recordedPathCandidates('tok', 'train.tokens')).toEqual(['tok']); // the file is in the working directory
  });

  it('the shipped generator still finds pretrained/tokenizer, recorded relative to the repository root', async () => {
    const cwd = process.cwd();
    process.chdir(root);
    try {
      const ck = await loadCheckpoint('pretrained/generator', 'generator');
      const p = ck.extra as GeneratorProvenance;
      expect(p.tokenizerPath).toBe('pretrained/tokenizer');
      expect(findTokenizerDir('pretrained/generator', p)).toBe('pretrained/tokenizer');
    } finally {
      process.chdir(cwd);
    }
  });
});
