/**
 * File-system failures in words, for one-line UserErrors ("<path>: <cause>"), and the flag such a line is about.
 * Node only: errors.ts stays importable by the browser page.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@factorgen/tfjs-ext';

/**
 * For an ENOTDIR error: the file that stands where a folder was expected, `err.path` itself or the nearest ancestor
 * of it that exists and is not a folder; null when none is found (it changed meanwhile).
 */
function fileInTheWay(err: NodeJS.ErrnoException & { dest?: string }): string | null {
  // A copy's ENOTDIR is about where it writes.
  const start = typeof err?.dest === 'string' ? err.dest : err?.path;
  if (typeof start !== 'string') return null;
  for (let p = start; ; p = path.dirname(p)) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p);
    } catch {
      // missing, or under the file: look further up
    }
    if (st && !st.isDirectory()) return p;
    if (path.dirname(p) === p) return null;
  }
}

/**
 * ENOTDIR in words: "is a file, expected a folder" when the path itself is the file, "<ancestor> is a file, not a
 * folder" when a folder on the way is one.
 */
export function describeNotAFolder(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { dest?: string };
  const file = fileInTheWay(err);
  if (file !== null && file === (err.dest ?? err.path)) return 'is a file, expected a folder';
  return file !== null ? `${file} is a file, not a folder` : 'a part of the path is a file, not a folder';
}

/**
 * A read failure in words, for `${path}: ${cause}`: "no such file", "is a folder, expected a file" (a `folder` read:
 * "no such folder", "is a file, expected a folder"), "<ancestor> is a file, not a folder", "permission denied";
 * otherwise "cannot read (<message>)".
 */
export function describeReadError(e: unknown, expected: 'file' | 'folder' = 'file'): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOENT':
      return `no such ${expected}`;
    case 'EISDIR':
      return 'is a folder, expected a file';
    case 'ENOTDIR':
      return describeNotAFolder(err);
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
 * Throws a UserError unless `dir` is a folder: "<dir>: no such folder", "<dir>: is a file, expected a folder",
 * "<dir>: permission denied", with ` (${hint})` after the cause when given.
 */
export function checkFolder(dir: string, hint = ''): void {
  let cause: string | null = null;
  try {
    if (!fs.statSync(dir).isDirectory()) cause = 'is a file, expected a folder';
  } catch (e) {
    cause = describeReadError(e, 'folder');
  }
  if (cause !== null) throw new UserError(`${dir}: ${cause}${hint ? ` (${hint})` : ''}`);
}

/**
 * Names the flag an error is about. A message that begins with a path the user gave to a flag (`--data X` or
 * `--data=X` in `argv`) gets that flag in front ("X: no such folder" -> "--data X: no such folder"); one that begins
 * with a path inside it names the flag and the rest of the path ("X/b/1.png: corrupt image" -> "--data X: b/1.png:
 * corrupt image"). When several flags' paths match, the longest (most specific) one is named; messages that begin
 * with a flag already, or with a path no flag or two flags equally match (a default, a path read from a file,
 * `--generator X --tokenizer X`), are unchanged.
 */
export function nameFlagOf(message: string, argv: string[]): string {
  if (message.startsWith('-')) return message;
  const colon = message.indexOf(': ');
  if (colon < 0) return message;
  const shown = message.slice(0, colon);
  let best: { flags: Set<string>; value: string; rest: string; length: number } | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    const [flag, value] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, argv[i + 1]];
    if (!value || value.startsWith('-')) continue;
    // Messages build paths with path.join, which drops "./" and a trailing slash: match both spellings.
    for (const form of new Set([value, path.normalize(value).replace(/(.)[\\/]+$/, '$1')])) {
      const inside = shown.startsWith(form + path.sep) && form !== path.sep;
      if (shown !== form && !inside) continue;
      const rest = shown === form ? '' : shown.slice(form.length + 1);
      if (best && form.length < best.length) continue;
      if (!best || form.length > best.length) best = { flags: new Set(), value, rest, length: form.length };
      best.flags.add(flag);
    }
  }
  // The same path given to two flags (--generator X --tokenizer X): which one failed is not known, name neither.
  if (!best || best.flags.size !== 1) return message;
  const flag = [...best.flags][0];
  return `${flag} ${best.value}: ${best.rest ? `${best.rest}: ` : ''}${message.slice(colon + 2)}`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether the bytes of a file name are valid UTF-8 (Node turns invalid bytes into U+FFFD, a name that then does not exist). */
export function isUtf8Name(name: Uint8Array): boolean {
  try {
    strictUtf8.decode(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * A file name (bytes from readdir, or a string) safe to print on one terminal line: valid UTF-8 is kept, control
 * characters (newlines, ESC of terminal escape sequences, DEL, C1) and bytes that are not UTF-8 are written as \xHH,
 * a backslash as \\. "caf\xe9" for the Latin-1 bytes of "café".
 */
export function printableName(name: Uint8Array | string): string {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let ch: string | null = null;
    if (len > 0 && i + len <= bytes.length) {
      try {
        ch = strictUtf8.decode(bytes.subarray(i, i + len));
      } catch {
        ch = null;
      }
    }
    if (ch === null) {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i += 1;
      continue;
    }
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 0x2028 || c === 0x2029) out += `\\u{${c.toString(16)}}`;
    else out += ch === '\\' ? '\\\\' : ch;
    i += len;
  }
  return out;
}

/** What a non-regular file is, in words ("a FIFO (named pipe)", "a character device"). */
function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens an input file for reading and sizes it before anything is read: it must be a regular file (a device such as
 * /dev/zero would be read until memory runs out, a FIFO would block: it is opened non-blocking and refused). Returns
 * the open descriptor (the caller closes it) and the size in bytes. UserError "<path>: <cause>" otherwise.
 */
export function openRegularFile(file: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new UserError(`${file}: ${describeReadError(e)}`);
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    const kind = kindOf(st);
    if (st.isDirectory()) throw new UserError(`${file}: is a folder, expected a file`);
    throw new UserError(`${file}: is ${kind.startsWith('not') ? 'not a regular file' : kind}, expected a regular file of known size`);
  }
  return { fd, size: st.size };
}

/**
 * Reads `length` bytes at `position` of an open file into a new Buffer, in chunks (one read call is limited to 2 GiB,
 * and a Buffer to about 4 GiB: larger reads are the caller's to avoid). Throws a UserError naming `file` when the
 * file ends early (it changed since it was sized).
 */
export function readAt(fd: number, file: string, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, Math.min(length - done, 1 << 30), position + done);
    if (n === 0) throw new UserError(`${file}: ended after ${position + done} bytes while reading (did it change?)`);
    done += n;
  }
  return buf;
}

/**
 * The whole of a small input file (a config, a JSON record), refused unless it is a regular file of at most
 * `maxBytes` (default 64 MiB): a corrupt path to a huge file or a device is named, not read into memory.
 */
export function readSmallFile(file: string, maxBytes = 64 * 2 ** 20): Buffer {
  const { fd, size } = openRegularFile(file);
  try {
    if (size > maxBytes) throw new UserError(`${file}: ${size} bytes, more than the ${maxBytes} a file of this kind can hold`);
    return readAt(fd, file, 0, size);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A message line safe to print on a terminal: control characters (a class name or file name holding ESC [31m or a
 * newline, read from a file) are written as \xHH, so a file cannot recolour, rewrite or split factorgen's lines.
 */
export function printableLine(line: string): string {
  return line.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.codePointAt(0)!;
    return code > 0xff ? `\\u{${code.toString(16)}}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}
