/** What a UserError is about: `field` names the input (an option of the call, e.g. 'tokenizer', 'out', 'steps'). */
export type UserErrorOptions = {
  /** The input the error is about, as the library call names it ('tokenizer', 'out', 'perClass'). */
  field?: string;
  /** The value given for it, shown after the field ("`tokens` runs/a.tokens: ..."). */
  value?: string | number;
  /** The process exit code a CLI uses (default 2). */
  exitCode?: number;
};

/**
 * A failure caused by the user's input (a file, an option, a folder), as opposed to a bug.
 * The CLI prints `message` as one line and exits with `exitCode`; nothing else is printed.
 *
 * Library code names inputs by their field, never by a CLI flag: with `field` the message is
 * "`field` value: cause", and other inputs the cause refers to are written the same way ("pass `overwrite` to
 * replace it"). Only a front end turns a backquoted field into its own words (the CLI: `--flag`; apps/cli/src/ui/errors.ts).
 */
export class UserError extends Error {
  readonly exitCode: number;
  readonly field?: string;
  /** The message without the "`field` value: " head (the whole message when there is no field). */
  readonly detail: string;

  constructor(detail: string, options: number | UserErrorOptions = 2) {
    const o = typeof options === 'number' ? { exitCode: options } : options;
    super(o.field === undefined ? detail : `\`${o.field}\`${o.value === undefined ? '' : ` ${o.value}`}: ${detail}`);
    this.name = 'UserError';
    this.exitCode = o.exitCode ?? 2;
    this.field = o.field;
    this.detail = detail;
  }
}

/** Throws a UserError naming `what` unless `ok`. */
export function check(ok: boolean, what: string, cause: string): asserts ok {
  if (!ok) throw new UserError(`${what}: ${cause}`);
}
