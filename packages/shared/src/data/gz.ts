import fs from 'node:fs';
import zlib from 'node:zlib';
import { UserError } from '../errors';

/** Reads and gunzips `file`; missing files and gzip errors become one-line UserErrors naming the file. */
export function readGzip(file: string, hint = ''): Uint8Array {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const cause = code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? (e as Error).message})`;
    throw new UserError(`${file}: ${cause}${hint ? ` (${hint})` : ''}`);
  }
  try {
    // A plain Uint8Array view: @types/node's Buffer does not match zlib's input type under TS 5.9.
    const out = zlib.gunzipSync(new Uint8Array(raw.buffer as ArrayBuffer, raw.byteOffset, raw.byteLength));
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw new UserError(`${file}: not a valid gzip file (${(e as Error).message})`);
  }
}
