/**
 * safetensors reader and writer, on bytes only (no filesystem, no tf): the CLI reads files with it and the web page
 * parses what it fetched with it.
 *
 * The format (https://github.com/huggingface/safetensors, "Format" in its README; the Rust crate's `validate` for the
 * checks a reader makes):
 *
 *   u64 N            8 bytes, little-endian: the header's length in bytes
 *   header           N bytes of UTF-8 JSON: `{ "<name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] },
 *                    ..., "__metadata__": { "<key>": "<string value>" } }` (`__metadata__` optional, string values only);
 *                    may end in spaces (writers pad it so the data starts at a multiple of 8)
 *   data             the tensors' bytes, little-endian, row-major; `data_offsets` are byte offsets relative to the
 *                    first byte after the header, and the tensors tile the data exactly: no gaps, no overlaps, no bytes
 *                    after the last one
 *
 * Reading refuses a hostile file with a one-line UserError `<shown>: <cause>`: a file shorter than its header, a header
 * over 100 MB (the Rust crate's limit), a header that is not UTF-8 JSON, a name that appears twice, an unknown dtype,
 * a shape whose size does not match its byte range, offsets out of range, overlapping or leaving gaps.
 *
 * Dtypes: factorgen's tensors are float32 and int32 (F32, I32), and only those are written. Reading also converts
 * F16 and BF16 (exactly), F64 (rounded to the nearest float32, as Math.fround) to float32, and I64 to int32 when every
 * value fits in int32 (otherwise refused, naming the tensor). The other dtypes of the format (BOOL, U8, I8, I16,
 * U16, U32, U64, F8_E4M3, F8_E5M2) are recognized and refused as unsupported.
 */
import { UserError } from '@factorgen/tfjs-ext';

/** Bytes per element of each dtype the safetensors format defines. */
export const SAFETENSORS_DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

/** The largest header read (bytes): the limit of the reference implementation (safetensors' Rust crate, MAX_HEADER_SIZE). */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

/** One tensor as stored: its dtype, shape and little-endian bytes (a view into the file's buffer, not a copy). */
export type SafetensorsRaw = { dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array };

/** A tensor as factorgen holds it in plain memory (structurally checkpointFormat's LoadedTensor). */
export type SafetensorsTensor = { shape: number[]; dtype: 'float32' | 'int32'; data: Float32Array | Int32Array };

/** What a safetensors file holds: tensors in file order (by begin offset) and the `__metadata__` strings. */
export type SafetensorsFile<T> = { tensors: Map<string, T>; metadata: Record<string, string> };

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The first key that appears twice in one object of valid JSON `text`, with whether it was at the top level (a tensor
 * name); null when none. JSON.parse keeps the last of duplicate keys silently, so a file could hide a tensor.
 */
function firstDuplicateKey(text: string): { key: string; top: boolean } | null {
  const stack: ({ keys: Set<string>; expectKey: boolean } | null)[] = []; // null: an array
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, top: stack.length === 1 };
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') stack.push({ keys: new Set(), expectKey: true });
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top) top.expectKey = true;
    }
  }
  return null;
}

const fmtShape = (shape: number[]) => `[${shape.join(',')}]`;

/**
 * Parses and validates a safetensors file's bytes (see the file comment for the checks). `shown` names the file in
 * errors. The tensors' bytes are views into `buf`, in file order; no dtype conversion happens here.
 */
export function parseSafetensors(buf: Uint8Array, shown: string): SafetensorsFile<SafetensorsRaw> {
  const bad = (cause: string) => new UserError(`${shown}: ${cause}`);
  if (buf.byteLength < 8) throw bad(`not a safetensors file (${buf.byteLength} bytes, shorter than the 8-byte header length)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32; // exact below 2^53; larger is over the limit anyway
  if (n > SAFETENSORS_MAX_HEADER) throw bad(`header of ${n} bytes is over the 100 MB limit (not a safetensors file?)`);
  if (8 + n > buf.byteLength) throw bad(`header of ${n} bytes is longer than the file (${buf.byteLength} bytes)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    throw bad('header is not UTF-8 text');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('header is not valid JSON');
  }
  if (!isObject(json)) throw bad('header is not a JSON object');
  const dup = firstDuplicateKey(text);
  if (dup) throw bad(dup.top ? `tensor "${dup.key}" appears twice in the header` : `key "${dup.key}" appears twice in one header entry`);

  const dataBytes = buf.byteLength - 8 - n;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, e] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(e) || !Object.values(e).every((v) => typeof v === 'string')) throw bad('"__metadata__" must map names to strings');
      Object.assign(metadata, e);
      continue;
    }
    const t = (cause: string) => bad(`tensor "${name}" ${cause}`);
    if (!isObject(e)) throw t('is not an object');
    if (typeof e.dtype !== 'string') throw t('has no dtype');
    if (!Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_BYTES, e.dtype)) throw t(`has unknown dtype ${JSON.stringify(e.dtype)}`);
    const dtype = e.dtype as SafetensorsDtype;
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every(isCount)) throw t('has an invalid shape');
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1]) || offsets[0] > offsets[1]) {
      throw t('has invalid data_offsets (need [begin, end] with 0 <= begin <= end)');
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataBytes) throw t(`has data_offsets [${begin},${end}] out of range (the data is ${dataBytes} bytes)`);
    const need = (shape as number[]).reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[dtype];
    if (need !== end - begin) {
      throw t(`has shape ${fmtShape(shape as number[])} of ${dtype}, ${need} bytes, but data_offsets [${begin},${end}] hold ${end - begin}`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  // The tensors must tile the data: sorted by offset, each starts where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: (typeof entries)[number] | null = null;
  for (const e of entries) {
    if (e.begin < at && prev) {
      throw bad(`tensors "${prev.name}" (bytes ${prev.begin}..${prev.end}) and "${e.name}" (bytes ${e.begin}..${e.end}) overlap`);
    }
    if (e.begin > at) throw bad(`data bytes ${at}..${e.begin} belong to no tensor`);
    at = e.end;
    prev = e;
  }
  if (at < dataBytes) throw bad(`data bytes ${at}..${dataBytes} belong to no tensor`);

  const start = 8 + n;
  const tensors = new Map<string, SafetensorsRaw>();
  for (const e of entries) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, bytes: buf.subarray(start + e.begin, start + e.end) });
  return { tensors, metadata };
}

/** A little-endian byte range as a fresh, aligned array of `Ctor` (swapping bytes on a big-endian host). */
function copyLittleEndian<A extends Float32Array | Int32Array | Uint16Array | Float64Array | BigInt64Array>(
  bytes: Uint8Array,
  Ctor: { new (buffer: ArrayBuffer): A; BYTES_PER_ELEMENT: number },
): A {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  if (!LITTLE_ENDIAN) {
    const w = Ctor.BYTES_PER_ELEMENT;
    for (let i = 0; i < copy.length; i += w) copy.subarray(i, i + w).reverse();
  }
  return new Ctor(copy.buffer);
}

/** IEEE 754 binary16 bits -> number (exact). */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/**
 * Converts one stored tensor to float32 or int32 (see the file comment for which dtypes convert and how); refuses the
 * others with a one-line UserError naming `name` in `shown`.
 */
export function decodeSafetensor(name: string, raw: SafetensorsRaw, shown: string): SafetensorsTensor {
  const shape = raw.shape.slice();
  switch (raw.dtype) {
    case 'F32':
      return { shape, dtype: 'float32', data: copyLittleEndian(raw.bytes, Float32Array) };
    case 'I32':
      return { shape, dtype: 'int32', data: copyLittleEndian(raw.bytes, Int32Array) };
    case 'F16': {
      const h = copyLittleEndian(raw.bytes, Uint16Array);
      return { shape, dtype: 'float32', data: Float32Array.from(h, halfToNumber) };
    }
    case 'BF16': {
      // bfloat16 is the high half of a float32.
      const h = copyLittleEndian(raw.bytes, Uint16Array);
      const bits = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
      return { shape, dtype: 'float32', data: new Float32Array(bits.buffer) };
    }
    case 'F64':
      return { shape, dtype: 'float32', data: Float32Array.from(copyLittleEndian(raw.bytes, Float64Array)) };
    case 'I64': {
      const wide = copyLittleEndian(raw.bytes, BigInt64Array);
      const out = new Int32Array(wide.length);
      for (let i = 0; i < wide.length; i++) {
        if (wide[i] < -2147483648n || wide[i] > 2147483647n) {
          throw new UserError(`${shown}: tensor "${name}" is I64 with a value (${wide[i]}) outside int32, which factorgen cannot hold`);
        }
        out[i] = Number(wide[i]);
      }
      return { shape, dtype: 'int32', data: out };
    }
    default:
      throw new UserError(`${shown}: tensor "${name}" has dtype ${raw.dtype}, which factorgen does not read (it reads F32, F16, BF16, F64, I32, I64)`);
  }
}

/** parseSafetensors, then decodeSafetensor on every tensor: float32/int32 tensors in file order, and the metadata. */
export function readSafetensors(buf: Uint8Array, shown: string): SafetensorsFile<SafetensorsTensor> {
  const file = parseSafetensors(buf, shown);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, raw] of file.tensors) tensors.set(name, decodeSafetensor(name, raw, shown));
  return { tensors, metadata: file.metadata };
}

/**
 * Serializes float32/int32 tensors (as F32/I32, in the map's order, packed from offset 0) and optional string
 * metadata to a safetensors file. Returns the chunks to write back to back: the 8-byte length plus header (padded
 * with spaces to a multiple of 8 bytes, so the data is 8-byte aligned in the file), then each tensor's bytes (views
 * of the tensors' own storage on little-endian hosts, not copies). `__metadata__` is written first and only when
 * non-empty; a tensor may not be named `__metadata__`.
 */
export function serializeSafetensors(tensors: Map<string, SafetensorsTensor>, metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new Error('safetensors: a tensor cannot be named __metadata__');
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`safetensors: tensor ${name} has shape ${fmtShape(t.shape)} but ${t.data.length} values`);
    let bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (!LITTLE_ENDIAN) {
      bytes = bytes.slice();
      for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
    }
    header[name] = { dtype: t.dtype === 'float32' ? 'F32' : 'I32', shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const head = new Uint8Array(8 + padded);
  new DataView(head.buffer).setUint32(0, padded, true); // headers are far below 2^32: the high word stays 0
  head.set(json, 8);
  return [head, ...chunks];
}

/** serializeSafetensors as one buffer (for tests and small files). */
export function safetensorsBytes(tensors: Map<string, SafetensorsTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const chunks = serializeSafetensors(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
