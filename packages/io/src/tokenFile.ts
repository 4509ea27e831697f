import * as fs from 'node:fs';
import { UserError } from '@factorgen/tfjs-ext';
import { openRegularFile, readAt } from './fsErrors';

/**
 * Token file: a tokenized dataset split, the input of `factorgen generator train`.
 *
 *   bytes 0..7   magic "FGTOKEN1"
 *   bytes 8..11  uint32 LE: length L of the JSON header
 *   bytes 12..   header JSON (UTF-8, L bytes): TokenFileHeader
 *   then `count` records, each: int32 LE label, then K token maps of gridH*gridW ids in raster order,
 *   stored as uint16 LE when every sub-codebook has <= 65536 codes, else int32 LE (header.dtype says which).
 *
 * Per record the layout is [label][map of sub-codebook 0][map of sub-codebook 1]...; in memory tokens are
 * kept position-major [N, T, K] because that is what the generator consumes.
 */
export type TokenFileHeader = {
  format: 1;
  /** Identity of the tokenizer that wrote the file: hash of its config and weights. */
  tokenizerId: string;
  /** Where that tokenizer's checkpoint was when the file was written (a hint for `sample`; the id is what is checked). */
  tokenizerPath: string;
  configHash: string;
  gridH: number;
  gridW: number;
  subCodebookSizes: number[];
  classNames: string[];
  count: number;
  dtype: 'uint16' | 'int32';
  /** Dataset and split the tokens came from, for the record. */
  source: string;
};

/** A tokenized split in memory. tokens: [count, gridH*gridW, K] int32 (position-major), labels: [count]. */
export type TokenSet = { header: TokenFileHeader; tokens: Int32Array; labels: Int32Array };

/** The first 8 bytes of every token file. */
export const TOKEN_FILE_MAGIC = 'FGTOKEN1';
const MAGIC = TOKEN_FILE_MAGIC;

function recordBytes(h: TokenFileHeader): number {
  const t = h.gridH * h.gridW * h.subCodebookSizes.length;
  return 4 + t * (h.dtype === 'uint16' ? 2 : 4);
}

/** Chooses the narrowest dtype that holds every id. */
export function tokenDtype(subCodebookSizes: number[]): 'uint16' | 'int32' {
  return Math.max(...subCodebookSizes) <= 65536 ? 'uint16' : 'int32';
}

/** Writes a token set; throws UserError naming the file when it cannot be written. Written via a temp file + rename. */
export function writeTokenFile(path: string, set: TokenSet): void {
  const h = set.header;
  const K = h.subCodebookSizes.length;
  const T = h.gridH * h.gridW;
  if (set.tokens.length !== h.count * T * K) throw new Error(`token set has ${set.tokens.length} ids, expected ${h.count * T * K}`);
  const head = Buffer.from(JSON.stringify(h), 'utf8');
  const rb = recordBytes(h);
  const buf = Buffer.alloc(12 + head.length + h.count * rb);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(head.length, 8);
  head.copy(buf, 12);
  let o = 12 + head.length;
  for (let n = 0; n < h.count; n++) {
    buf.writeInt32LE(set.labels[n], o);
    o += 4;
    for (let k = 0; k < K; k++) {
      for (let t = 0; t < T; t++) {
        const id = set.tokens[(n * T + t) * K + k];
        if (h.dtype === 'uint16') {
          buf.writeUInt16LE(id, o);
          o += 2;
        } else {
          buf.writeInt32LE(id, o);
          o += 4;
        }
      }
    }
  }
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, buf);
    fs.renameSync(tmp, path);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new UserError(`${path}: could not write token file (${(e as Error).message})`);
  }
}

function parseHeader(path: string, buf: Buffer): TokenFileHeader {
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) {
    throw new UserError(`${path}: not a factorgen token file (bad magic)`);
  }
  const len = buf.readUInt32LE(8);
  if (12 + len > buf.length) throw new UserError(`${path}: truncated token file (header needs ${len} bytes)`);
  let h: TokenFileHeader;
  try {
    h = JSON.parse(buf.toString('utf8', 12, 12 + len)) as TokenFileHeader;
  } catch {
    throw new UserError(`${path}: token file header is not valid JSON`);
  }
  if (h.format !== 1) throw new UserError(`${path}: token file format ${h.format} is not supported (this version reads 1)`);
  const ok =
    Number.isInteger(h.gridH) && h.gridH > 0 && Number.isInteger(h.gridW) && h.gridW > 0 &&
    Array.isArray(h.subCodebookSizes) && h.subCodebookSizes.length >= 1 &&
    h.subCodebookSizes.every((v) => Number.isInteger(v) && v > 0) &&
    Array.isArray(h.classNames) && h.classNames.length >= 1 && Number.isInteger(h.count) && h.count >= 0 &&
    (h.dtype === 'uint16' || h.dtype === 'int32') && typeof h.tokenizerId === 'string';
  if (!ok) throw new UserError(`${path}: token file header is missing or has invalid fields`);
  // Sane limits on every size in the header, before it sizes anything (the generator's config takes them).
  const over = [
    h.gridH > 256 && `gridH ${h.gridH} (limit 256)`,
    h.gridW > 256 && `gridW ${h.gridW} (limit 256)`,
    h.subCodebookSizes.length > 64 && `${h.subCodebookSizes.length} sub-codebooks (limit 64)`,
    h.subCodebookSizes.some((v) => v > 2 ** 20) && `a sub-codebook of ${Math.max(...h.subCodebookSizes)} codes (limit ${2 ** 20})`,
    h.classNames.length > 1_000_000 && `${h.classNames.length} classes (limit 1000000)`,
    !h.classNames.every((c) => typeof c === 'string') && 'a class name that is not text',
  ].filter((x): x is string => typeof x === 'string');
  if (over.length > 0) throw new UserError(`${path}: token file header has ${over.join(', ')}`);
  return h;
}

/**
 * The most token ids a token file may hold (2^30: 4 GiB as int32 in memory, a uint16 file of about 2 GiB). The whole
 * split is held in memory by generator training; a larger file is refused from its header, before it is read.
 */
export const MAX_TOKEN_IDS = 2 ** 30;

/**
 * Opens a token file, sizes it, and reads and checks its header against its byte length: a regular file (not
 * /dev/zero, not a FIFO), the header inside the file, and the records the header announces filling the rest exactly
 * and within MAX_TOKEN_IDS. Nothing is allocated for the body before these checks. The caller closes `fd`.
 */
function openTokenFile(path: string): { fd: number; size: number; header: TokenFileHeader; start: number } {
  const { fd, size } = openRegularFile(path);
  try {
    if (size < 12) throw new UserError(`${path}: not a factorgen token file (bad magic)`);
    const first = readAt(fd, path, 0, 12);
    if (first.toString('latin1', 0, 8) !== MAGIC) throw new UserError(`${path}: not a factorgen token file (bad magic)`);
    const len = first.readUInt32LE(8);
    if (12 + len > size) throw new UserError(`${path}: truncated token file (header needs ${len} bytes)`);
    const h = parseHeader(path, Buffer.concat([first, readAt(fd, path, 12, len)]));
    const start = 12 + len;
    const ids = h.count * h.gridH * h.gridW * h.subCodebookSizes.length;
    const expected = start + h.count * recordBytes(h);
    if (size !== expected) {
      const what = size < expected ? 'truncated' : 'has trailing bytes';
      throw new UserError(`${path}: token file ${what} (expected ${expected} bytes for ${h.count} records, found ${size})`);
    }
    if (ids > MAX_TOKEN_IDS) {
      throw new UserError(`${path}: ${h.count} records of ${ids / Math.max(1, h.count)} token ids (${(size / 2 ** 30).toFixed(2)} GiB) are more than the ${MAX_TOKEN_IDS} ids a token file may hold in memory; encode fewer images (--limit) into several files`);
    }
    return { fd, size, header: h, start };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Reads only the header (cheap; for checks before loading), after checking it against the file's size. */
export function readTokenHeader(path: string): TokenFileHeader {
  const { fd, header } = openTokenFile(path);
  fs.closeSync(fd);
  return header;
}

/** Reads and validates a whole token file: exact size, labels in range, every id inside its sub-codebook. */
export function readTokenFile(path: string): TokenSet {
  const { fd, size, header: h, start } = openTokenFile(path);
  let buf: Buffer;
  try {
    // The whole file in chunks (readFileSync cannot read one over 2 GiB); its size was checked against the header.
    buf = readAt(fd, path, 0, size);
  } finally {
    fs.closeSync(fd);
  }
  const K = h.subCodebookSizes.length;
  const T = h.gridH * h.gridW;
  const tokens = new Int32Array(h.count * T * K);
  const labels = new Int32Array(h.count);
  let o = start;
  for (let n = 0; n < h.count; n++) {
    const label = buf.readInt32LE(o);
    o += 4;
    if (label < 0 || label >= h.classNames.length) {
      throw new UserError(`${path}: record ${n} has label ${label}, outside 0..${h.classNames.length - 1}`);
    }
    labels[n] = label;
    for (let k = 0; k < K; k++) {
      const v = h.subCodebookSizes[k];
      for (let t = 0; t < T; t++) {
        const id = h.dtype === 'uint16' ? buf.readUInt16LE(o) : buf.readInt32LE(o);
        o += h.dtype === 'uint16' ? 2 : 4;
        if (id < 0 || id >= v) {
          throw new UserError(`${path}: record ${n}, sub-codebook ${k} has token id ${id}, outside 0..${v - 1}`);
        }
        tokens[(n * T + t) * K + k] = id;
      }
    }
  }
  return { header: h, tokens, labels };
}
