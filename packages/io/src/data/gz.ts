import fs from 'node:fs';
import zlib from 'node:zlib';
import { UserError } from '@factorgen/tfjs-ext';
import { describeReadError } from '../fsErrors';

/** Reads and gunzips `file`; missing files and gzip errors become one-line UserErrors naming the file. */
export function readGzip(file: string, hint = ''): Uint8Array {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`${file}: ${describeReadError(e)}${hint ? ` (${hint})` : ''}`);
  }
  try {
    // A plain Uint8Array view: @types/node's Buffer does not match zlib's input type under TS 5.9.
    const out = zlib.gunzipSync(new Uint8Array(raw.buffer as ArrayBuffer, raw.byteOffset, raw.byteLength));
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw new UserError(`${file}: not a valid gzip file (${(e as Error).message})`);
  }
}
