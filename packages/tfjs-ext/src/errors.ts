/**
 * A failure caused by the user's input (a file, a flag, a folder), as opposed to a bug.
 * The CLI prints `message` as one line and exits with `exitCode`; nothing else is printed.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

/** Throws a UserError naming `what` unless `ok`. */
export function check(ok: boolean, what: string, cause: string): asserts ok {
  if (!ok) throw new UserError(`${what}: ${cause}`);
}
