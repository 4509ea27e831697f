/**
 * Library errors carry the field they are about and name no CLI flag; apps/cli/src/ui/errors.ts is where a field
 * becomes a flag, so the one-line messages the CLI prints stay those users know.
 */
import { describe, expect, it } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { cliError, flagOf, inFlagWords } from '@factorgen/cli/ui/errors';
import { parseClasses } from '@factorgen/pipelines';

describe('UserError fields', () => {
  it('with a field the message is "`field` value: detail"; without one it is the detail; exit code 2 unless given', () => {
    const e = new UserError('is a file, not a folder', { field: 'out', value: 'runs/a' });
    expect(e.message).toBe('`out` runs/a: is a file, not a folder');
    expect([e.field, e.detail, e.exitCode]).toEqual(['out', 'is a file, not a folder', 2]);
    const noValue = new UserError('not given', { field: 'tokenizer', exitCode: 3 });
    expect([noValue.message, noValue.exitCode]).toEqual(['`tokenizer`: not given', 3]);
    const plain = new UserError('x.png: corrupt image', 4);
    expect([plain.message, plain.field, plain.exitCode]).toEqual(['x.png: corrupt image', undefined, 4]);
  });

  it('the CLI says fields as flags, in the head and in the words; other backquoted words and the exit code are kept', () => {
    expect(flagOf('perClass')).toBe('--per-class');
    expect(flagOf('cfgScale')).toBe('--cfg');
    expect(flagOf('nonsense')).toBeUndefined();
    expect(inFlagWords('`cfgScale` 2: use `cfgScale` 1, or pass `force`; see `factorgen sample`')).toBe('--cfg 2: use --cfg 1, or pass --force; see `factorgen sample`');
    const shown = cliError(new UserError('already exists; pass `overwrite` to replace it', { field: 'out', value: 'a.tokens', exitCode: 5 }));
    expect([shown.message, shown.exitCode]).toEqual(['--out a.tokens: already exists; pass --overwrite to replace it', 5]);
    // Nothing to say differently: the same error.
    const plain = new UserError('--steps 3: already at step 4');
    expect(cliError(plain)).toBe(plain);
  });

  it('a library refusal names its field and no flag', () => {
    let e: unknown;
    try {
      parseClasses('3,3', ['a', 'b', 'c', 'd']);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).field).toBe('classes');
    expect((e as UserError).message).toBe('`classes`: class 3 "d" is given twice ("3" and "3"); give each class once (`perClass` sets how many images)');
    expect((e as UserError).message).not.toMatch(/--/);
  });
});
