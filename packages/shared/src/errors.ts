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

/**
 * A read failure in words, for `${path}: ${cause}`: "no such file", "is a folder, expected a file" (a `folder` read:
 * "no such folder", "is a file, expected a folder"), "permission denied"; otherwise "cannot read (<message>)".
 */
export function describeReadError(e: unknown, expected: 'file' | 'folder' = 'file'): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOENT':
      return `no such ${expected}`;
    case 'EISDIR':
      return 'is a folder, expected a file';
    case 'ENOTDIR':
      return expected === 'folder' ? 'is a file, expected a folder' : 'a part of the path is a file, not a folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default: {
      const msg = typeof err?.message === 'string' ? err.message : String(e);
      return `cannot read (${msg.split(',')[0].split('\n')[0]})`;
    }
  }
}

/**
 * Names the flag an error is about: a message that begins with a path the user gave to a flag (`--tokens X` or
 * `--tokens=X` in `argv`) gets that flag in front ("X: no such file" -> "--tokens X: no such file"). Messages that
 * begin with a flag already, or with a path no flag or more than one flag was given (a default, a path read from a
 * file), are unchanged.
 */
export function nameFlagOf(message: string, argv: string[]): string {
  if (message.startsWith('-')) return message;
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    const [flag, value] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, argv[i + 1]];
    if (value && !value.startsWith('-') && message.startsWith(`${value}: `)) flags.add(flag);
  }
  // The same path given to two flags (--generator X --tokenizer X): which one failed is not known, name neither.
  return flags.size === 1 ? `${[...flags][0]} ${message}` : message;
}
