/**
 * Library errors name fields ("`out` DIR: ..."); the CLI prints them with its flags ("--out DIR: ..."). Tests of
 * library calls assert the line a user of the CLI would read, through the CLI's own mapping.
 */
import { expect } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { cliError } from '@factorgen/cli/ui/errors';

/** The message of a UserError as the CLI prints it. */
export function inCliWords(e: unknown): string {
  expect(e).toBeInstanceOf(UserError);
  return cliError(e as UserError).message;
}

/** The message of the UserError `f` throws, as the CLI prints it ('' when it throws nothing, which fails the caller's assertion). */
export function thrownInCliWords(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return inCliWords(e);
  }
  return '';
}
