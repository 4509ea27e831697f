/**
 * The safetensors reader and writer (packages/formats/src/safetensors.ts) against files written byte by byte here from
 * the format's description (8-byte little-endian header length, JSON header padded with spaces, packed data), every
 * hostile file's exact line, and the dtypes read by conversion.
 */
import { describe, expect, it } from 'vitest';
import { readSafetensors, safetensorsBytes, SAFETENSORS_MAX_HEADER, type SafetensorsTensor } from '@factorgen/formats';

const enc = new TextEncoder();

/** A file from its parts: the u64 little-endian length of `header` (as given, padding included), `header`, `data`. */
function fileOf(header: string, data: number[] = [], declaredLength?: number): Uint8Array {
  const h = enc.encode(header);
  const n = declaredLength ?? h.length;
  const len = [n % 256, (n >>> 8) % 256, (n >>> 16) % 256, (n >>> 24) % 256, 0, 0, 0, 0];
  return new Uint8Array([...len, ...h, ...data]);
}

/** The one-line error readSafetensors throws for `bytes` (named f.safetensors). */
function errorOf(bytes: Uint8Array): string {
  try {
    readSafetensors(bytes, 'f.safetensors');
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

describe('safetensors writer and reader', () => {
  // a = F32 [2] (1, -2.5), b = I32 [1,1] (7), metadata step "5". The header is 138 bytes, padded with 6 spaces to 144.
  const header = '{"__metadata__":{"step":"5"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1,1],"data_offsets":[8,12]}}';
  const handBuilt = new Uint8Array([
    0x90, 0, 0, 0, 0, 0, 0, 0, // 144, little-endian u64
    ...enc.encode(header), 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x00, 0x00, 0x80, 0x3f, // 1.0f
    0x00, 0x00, 0x20, 0xc0, // -2.5f
    0x07, 0x00, 0x00, 0x00, // 7
  ]);
  const tensors = new Map<string, SafetensorsTensor>([
    ['a', { shape: [2], dtype: 'float32', data: new Float32Array([1, -2.5]) }],
    ['b', { shape: [1, 1], dtype: 'int32', data: new Int32Array([7]) }],
  ]);

  it('writes exactly the bytes the format describes', () => {
    expect(header.length).toBe(138);
    expect(handBuilt.length).toBe(8 + 144 + 12);
    expect([...safetensorsBytes(tensors, { step: '5' })]).toEqual([...handBuilt]);
  });

  it('reads the hand-built file', () => {
    const f = readSafetensors(handBuilt, 'f');
    expect(f.metadata).toEqual({ step: '5' });
    expect([...f.tensors.keys()]).toEqual(['a', 'b']);
    expect(f.tensors.get('a')).toEqual({ shape: [2], dtype: 'float32', data: new Float32Array([1, -2.5]) });
    expect(f.tensors.get('b')).toEqual({ shape: [1, 1], dtype: 'int32', data: new Int32Array([7]) });
  });

  it('reads tensors stored out of name order, an unpadded header, and no metadata', () => {
    const bytes = fileOf('{"y":{"dtype":"I32","shape":[],"data_offsets":[4,8]},"x":{"shape":[1],"dtype":"F32","data_offsets":[0,4]}}', [
      0, 0, 0xc0, 0x3f, // 1.5f
      0xfe, 0xff, 0xff, 0xff, // -2
    ]);
    const f = readSafetensors(bytes, 'f');
    expect(f.metadata).toEqual({});
    expect([...f.tensors.keys()]).toEqual(['x', 'y']); // file order
    expect([...f.tensors.get('x')!.data]).toEqual([1.5]);
    expect(f.tensors.get('y')).toEqual({ shape: [], dtype: 'int32', data: new Int32Array([-2]) });
  });

  it('round-trips scalars, empty tensors and random values bit for bit', () => {
    const rand = new Float32Array(1000);
    for (let i = 0; i < rand.length; i++) rand[i] = Math.sin(i * 12.9898) * 43758.5453;
    rand[3] = -0;
    rand[4] = Infinity;
    const t = new Map<string, SafetensorsTensor>([
      ['scalar', { shape: [], dtype: 'float32', data: new Float32Array([0.1]) }],
      ['empty', { shape: [0, 3], dtype: 'float32', data: new Float32Array(0) }],
      ['enc/conv/kernel', { shape: [10, 10, 10], dtype: 'float32', data: rand }],
      ['counts', { shape: [3], dtype: 'int32', data: new Int32Array([2147483647, -2147483648, 0]) }],
    ]);
    const back = readSafetensors(safetensorsBytes(t, { a: 'b', 'é': 'ü' }), 'f');
    expect(back.metadata).toEqual({ a: 'b', 'é': 'ü' });
    expect([...back.tensors.keys()]).toEqual(['scalar', 'empty', 'enc/conv/kernel', 'counts']);
    for (const [name, x] of t) {
      const y = back.tensors.get(name)!;
      expect(y.shape).toEqual(x.shape);
      expect(y.dtype).toBe(x.dtype);
      expect(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength).equals(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength))).toBe(true);
    }
  });

  it('reads F16, BF16 and F64 as float32 and I64 as int32', () => {
    const f64 = new Uint8Array(new Float64Array([0.1, -3]).buffer);
    const i64 = new Uint8Array(new BigInt64Array([-3n, 2147483647n]).buffer);
    const bytes = fileOf(
      '{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},' +
        '"d":{"dtype":"F64","shape":[2],"data_offsets":[12,28]},"i":{"dtype":"I64","shape":[2],"data_offsets":[28,44]}}',
      [
        0x00, 0x3c, 0x00, 0xc0, 0x55, 0x35, 0x01, 0x00, // F16 1, -2, 0x3555 = 0.333251953125, 0x0001 = 2^-24 (subnormal)
        0x80, 0x3f, 0x49, 0x40, // BF16 1, 0x4049 = 3.140625
        ...f64,
        ...i64,
      ],
    );
    const f = readSafetensors(bytes, 'f');
    expect(f.tensors.get('h')).toEqual({ shape: [4], dtype: 'float32', data: new Float32Array([1, -2, 0.333251953125, 2 ** -24]) });
    expect(f.tensors.get('b')).toEqual({ shape: [2], dtype: 'float32', data: new Float32Array([1, 3.140625]) });
    expect(f.tensors.get('d')).toEqual({ shape: [2], dtype: 'float32', data: new Float32Array([Math.fround(0.1), -3]) });
    expect(f.tensors.get('i')).toEqual({ shape: [2], dtype: 'int32', data: new Int32Array([-3, 2147483647]) });
  });

  it('refuses every hostile file with one exact line', () => {
    const T = (name: string, dtype: string, shape: string, begin: number, end: number) =>
      `"${name}":{"dtype":"${dtype}","shape":${shape},"data_offsets":[${begin},${end}]}`;
    const eight = [1, 2, 3, 4, 5, 6, 7, 8];
    const cases: [string, Uint8Array, string][] = [
      ['shorter than the length', new Uint8Array([1, 0, 0]), 'f.safetensors: not a safetensors file (3 bytes, shorter than the 8-byte header length)'],
      ['header longer than the file', fileOf('{}', [], 100), 'f.safetensors: header of 100 bytes is longer than the file (10 bytes)'],
      ['header over 100 MB', fileOf('{}', [], SAFETENSORS_MAX_HEADER + 1), 'f.safetensors: header of 100000001 bytes is over the 100 MB limit (not a safetensors file?)'],
      ['header length with the high word set', new Uint8Array([0, 0, 0, 0, 1, 0, 0, 0, 0x7b, 0x7d]), 'f.safetensors: header of 4294967296 bytes is over the 100 MB limit (not a safetensors file?)'],
      ['non-JSON header', fileOf('{"a":', eight), 'f.safetensors: header is not valid JSON'],
      ['non-UTF-8 header', new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]), 'f.safetensors: header is not UTF-8 text'],
      ['header not an object', fileOf('[1, 2]'), 'f.safetensors: header is not a JSON object'],
      ['duplicate names', fileOf(`{${T('w', 'F32', '[1]', 0, 4)},${T('w', 'F32', '[1]', 4, 8)}}`, eight), 'f.safetensors: tensor "w" appears twice in the header'],
      ['duplicate names spelled with escapes', fileOf(`{${T('w', 'F32', '[1]', 0, 4)},${T('\\u0077', 'F32', '[1]', 4, 8)}}`, eight), 'f.safetensors: tensor "w" appears twice in the header'],
      ['duplicate key in an entry', fileOf('{"w":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}', [1, 2, 3, 4]), 'f.safetensors: key "dtype" appears twice in one header entry'],
      ['unknown dtype', fileOf(`{${T('w', 'F33', '[2]', 0, 8)}}`, eight), 'f.safetensors: tensor "w" has unknown dtype "F33"'],
      ['known but unsupported dtype', fileOf(`{${T('w', 'U8', '[8]', 0, 8)}}`, eight), 'f.safetensors: tensor "w" has dtype U8, which factorgen does not read (it reads F32, F16, BF16, F64, I32, I64)'],
      ['shape product not the byte length', fileOf(`{${T('w', 'F32', '[3]', 0, 8)}}`, eight), 'f.safetensors: tensor "w" has shape [3] of F32, 12 bytes, but data_offsets [0,8] hold 8'],
      ['offsets out of range', fileOf(`{${T('w', 'F32', '[4]', 0, 16)}}`, eight), 'f.safetensors: tensor "w" has data_offsets [0,16] out of range (the data is 8 bytes)'],
      ['offsets reversed', fileOf(`{${T('w', 'F32', '[0]', 8, 4)}}`, eight), 'f.safetensors: tensor "w" has invalid data_offsets (need [begin, end] with 0 <= begin <= end)'],
      ['negative offset', fileOf(`{${T('w', 'F32', '[1]', -4, 0)}}`, eight), 'f.safetensors: tensor "w" has invalid data_offsets (need [begin, end] with 0 <= begin <= end)'],
      ['overlapping tensors', fileOf(`{${T('a', 'F32', '[2]', 0, 8)},${T('b', 'F32', '[1]', 4, 8)}}`, eight), 'f.safetensors: tensors "a" (bytes 0..8) and "b" (bytes 4..8) overlap'],
      ['a gap between tensors', fileOf(`{${T('a', 'F32', '[1]', 0, 4)},${T('b', 'F32', '[0]', 8, 8)}}`, eight), 'f.safetensors: data bytes 4..8 belong to no tensor'],
      ['bytes after the last tensor', fileOf(`{${T('a', 'F32', '[1]', 0, 4)}}`, eight), 'f.safetensors: data bytes 4..8 belong to no tensor'],
      ['bad shape', fileOf(`{${T('a', 'F32', '[1.5]', 0, 4)}}`, [1, 2, 3, 4]), 'f.safetensors: tensor "a" has an invalid shape'],
      ['metadata not strings', fileOf('{"__metadata__":{"step":5}}'), 'f.safetensors: "__metadata__" must map names to strings'],
      ['I64 outside int32', fileOf(`{${T('i', 'I64', '[1]', 0, 8)}}`, [0, 0, 0, 0x80, 0, 0, 0, 0]), 'f.safetensors: tensor "i" is I64 with a value (2147483648) outside int32, which factorgen cannot hold'],
    ];
    const got = cases.map(([what, bytes]) => [what, errorOf(bytes)]);
    expect(got).toEqual(cases.map(([what, , line]) => [what, line]));
  });
});
