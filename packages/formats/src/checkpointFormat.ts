/**
 * The checkpoint format without the filesystem: validating config.json, reading model.safetensors /
 * optimizer.safetensors (format 2) or cutting the legacy weights.bin / optimizer.bin (format 1) into tensors, and
 * copying tensors into a model. checkpoint.ts reads and writes folders with it; the web page parses files it fetched
 * with it (so both refuse the same bad files with the same messages). See checkpoint.ts and docs/formats.md
 * ("Checkpoint folder") for the layouts.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '@factorgen/tfjs-ext';
import type { RngState } from '@factorgen/nn';
import { readSafetensors } from './safetensors';

/** The checkpoint format written by default: config.json + model.safetensors (+ optimizer.safetensors). */
export const CHECKPOINT_FORMAT = 2;
/** The legacy format, still read and written on request: config.json holding the indexes + weights.bin (+ optimizer.bin). */
export const LEGACY_CHECKPOINT_FORMAT = 1;
export type CheckpointFormat = typeof CHECKPOINT_FORMAT | typeof LEGACY_CHECKPOINT_FORMAT;

/** File names of a format-2 checkpoint folder. */
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
/** Tensor-name prefixes of AdamW's first and second moments in optimizer.safetensors (`m/<param>`, `v/<param>`). */
export const MOMENT_PREFIXES = { m: 'm/', v: 'v/' } as const;

// The plain-data tensor type lives in @factorgen/nn (EMA restores from it); checkpoints speak it.
import { describeMismatch, type LoadedTensor, type TensorDtype } from '@factorgen/nn';
export type { LoadedTensor, TensorDtype };

/** AdamW state as plain data; m and v have the same names as the parameters they belong to. */
export type LoadedOptimizer = { step: number; m: Map<string, LoadedTensor>; v: Map<string, LoadedTensor> };

export type IndexEntry = { name: string; shape: number[]; dtype: TensorDtype; offset: number; length: number };

export type LoadedCheckpoint = {
  kind: string;
  config: Record<string, unknown>;
  step: number;
  rng?: RngState;
  extra?: Record<string, unknown>;
  tensors: Map<string, LoadedTensor>;
  optimizer?: LoadedOptimizer;
  /** The folder actually read: `dir`, or a leftover `<dir>.old-*` when `dir` was missing. */
  from: string;
  /** The format of its files (config.json's "format"): which weight file it has (weights.bin or model.safetensors). */
  format: CheckpointFormat;
};

/** Whether this host stores numbers little-endian (the files are little-endian). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Byte-swaps 4-byte words in a copy (only on big-endian hosts: the files are little-endian). */
export function swap32(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  for (let i = 0; i < bytes.byteLength; i += 4) {
    out[i] = bytes[i + 3];
    out[i + 1] = bytes[i + 2];
    out[i + 2] = bytes[i + 1];
    out[i + 3] = bytes[i];
  }
  return out;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape: number[]) => `[${shape.join(',')}]`;
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * Validates one tensor index (in config.json) against the size it declares. Returns its entry lists
 * (weights: [entries]; optimizer: [m, v]), each with unique names.
 */
function checkIndex(raw: unknown, what: 'weights' | 'optimizer', configFile: string): { bytes: number; lists: IndexEntry[][] } {
  const bad = (cause: string) => new UserError(`${configFile}: ${what} ${cause}`);
  if (!isObject(raw)) throw bad('index is missing');
  const bytes = raw.bytes;
  if (!isCount(bytes)) throw bad('index has no valid "bytes"');
  const lists: IndexEntry[][] = [];
  for (const list of what === 'optimizer' ? [raw.m, raw.v] : [raw.entries]) {
    if (!Array.isArray(list)) throw bad('index has no entry list');
    const seen = new Set<string>();
    const entries: IndexEntry[] = [];
    for (const e of list as unknown[]) {
      if (!isObject(e) || typeof e.name !== 'string' || e.name === '') throw bad('entry without a name');
      const name = e.name;
      if (seen.has(name)) throw bad(`entry "${name}" appears twice`);
      seen.add(name);
      const shape = e.shape;
      if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`entry "${name}" has an invalid shape`);
      if (e.dtype !== 'float32' && e.dtype !== 'int32') throw bad(`entry "${name}" has unsupported dtype ${JSON.stringify(e.dtype)}`);
      if (!isCount(e.offset) || !isCount(e.length) || e.offset % 4 !== 0) throw bad(`entry "${name}" has an invalid offset/length`);
      const expected = numel(shape as number[]) * 4;
      if (e.length !== expected) {
        throw bad(`entry "${name}" has length ${e.length} but shape ${fmtShape(shape as number[])} needs ${expected} bytes`);
      }
      if (e.offset + e.length > bytes) {
        throw bad(`entry "${name}" (bytes ${e.offset}..${e.offset + e.length}) is out of range (file has ${bytes} bytes)`);
      }
      entries.push({ name, shape: shape as number[], dtype: e.dtype, offset: e.offset, length: e.length });
    }
    lists.push(entries);
  }
  return { bytes, lists };
}

/** Throws the one-line UserError for a binary file of `found` bytes where the index says `bytes`; nothing when equal. */
export function checkBinSize(shown: string, bytes: number, found: number): void {
  if (found < bytes) throw new UserError(`${shown}: truncated: expected ${bytes} bytes, found ${found}`);
  if (found > bytes) throw new UserError(`${shown}: wrong size: expected ${bytes} bytes, found ${found}`);
}

/** Cuts a binary file whose exact size the index states into tensors (aligned copies). `shown` names it in errors. */
function cutBin(buf: Uint8Array, shown: string, bytes: number, lists: IndexEntry[][]): Map<string, LoadedTensor>[] {
  checkBinSize(shown, bytes, buf.byteLength);
  return lists.map((entries) => {
    const out = new Map<string, LoadedTensor>();
    for (const e of entries) {
      let raw: Uint8Array = new Uint8Array(e.length);
      raw.set(buf.subarray(e.offset, e.offset + e.length));
      if (!LITTLE_ENDIAN) raw = swap32(raw);
      const data = e.dtype === 'float32' ? new Float32Array(raw.buffer) : new Int32Array(raw.buffer);
      out.set(e.name, { shape: e.shape, dtype: e.dtype, data });
    }
    return out;
  });
}

function isRngState(x: unknown): x is RngState {
  return isObject(x) && typeof x.seed === 'string' && isObject(x.alea) && (x.spare === null || typeof x.spare === 'number');
}

const sameNames = (a: Map<string, unknown>, b: Map<string, unknown>) => [...a.keys()].sort().join('\n') === [...b.keys()].sort().join('\n');

/** How parseCheckpoint gets the binary files and names things in its messages. */
export type CheckpointSource = {
  /** How messages name the checkpoint folder. */
  shown: string;
  /** How messages name a file of it ("DIR/weights.bin"). */
  file(name: string): string;
  /**
   * The bytes of a file of the folder (weights.bin, model.safetensors, ...); throws a UserError naming it when it
   * cannot be read. `bytes`: the size an index in config.json states (format 1's weights.bin / optimizer.bin); a source
   * that can learn the size first (a file: stat) refuses a file of another size before reading it, so a huge or
   * endless file is never read into memory. A self-describing file (safetensors) is read without it.
   */
  read(name: string, bytes?: number): Promise<Uint8Array>;
  /**
   * The bytes of a file that may be absent (optimizer.safetensors), null when it is; other failures throw like read.
   * Needed only to read format-2 optimizer state (parseCheckpoint's withOptimizer).
   */
  readIfPresent?(name: string): Promise<Uint8Array | null>;
};

/**
 * Validates a checkpoint's config.json text (optionally requiring its kind), then reads and cuts weights.bin and,
 * when the index has one and `withOptimizer`, optimizer.bin. Every problem is a one-line UserError naming the file.
 */
export async function parseCheckpoint(text: string, src: CheckpointSource, expectKind?: string, withOptimizer = true): Promise<LoadedCheckpoint> {
  const configFile = src.file('config.json');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${configFile}: invalid JSON (${String(e instanceof Error ? e.message : e).split('\n')[0]})`);
  }
  const bad = (cause: string) => new UserError(`${configFile}: ${cause}`);
  if (!isObject(json)) throw bad('not a JSON object');
  const format = json.format;
  const reads = `${LEGACY_CHECKPOINT_FORMAT} and ${CHECKPOINT_FORMAT}`;
  if (!isCount(format) || format < 1) throw bad(`unknown format ${JSON.stringify(format)} (this version reads ${reads})`);
  if (format > CHECKPOINT_FORMAT) {
    throw bad(`was written by a newer factorgen (format ${format}, this version reads ${reads})`);
  }
  if (typeof json.kind !== 'string' || json.kind === '') throw bad('missing "kind"');
  if (expectKind !== undefined && json.kind !== expectKind) {
    throw new UserError(`${src.shown}: expected a ${expectKind} checkpoint, found a ${json.kind} checkpoint`);
  }
  if (!isObject(json.config)) throw bad('missing "config" object');
  if (!isCount(json.step)) throw bad('missing or invalid "step"');
  if (json.rng !== undefined && !isRngState(json.rng)) throw bad('invalid "rng" state');
  if (json.extra !== undefined && !isObject(json.extra)) throw bad('"extra" is not an object');

  const common = {
    kind: json.kind,
    config: json.config,
    step: json.step,
    ...(json.rng !== undefined ? { rng: json.rng as RngState } : {}),
    ...(json.extra !== undefined ? { extra: json.extra as Record<string, unknown> } : {}),
  };
  if (format === CHECKPOINT_FORMAT) {
    const { tensors, optimizer } = await readSafetensorFiles(src, withOptimizer);
    return { ...common, tensors, ...(optimizer ? { optimizer } : {}), from: src.shown, format };
  }

  const w = checkIndex(json.weights, 'weights', configFile);
  if (!isObject(json.weights) || json.weights.file !== 'weights.bin') throw bad('weights index must name file "weights.bin"');
  const [tensors] = cutBin(await src.read('weights.bin', w.bytes), src.file('weights.bin'), w.bytes, w.lists);

  let optimizer: LoadedOptimizer | undefined;
  if (json.optimizer !== undefined && withOptimizer) {
    const raw = json.optimizer;
    const o = checkIndex(raw, 'optimizer', configFile);
    if (!isObject(raw) || raw.file !== 'optimizer.bin') throw bad('optimizer index must name file "optimizer.bin"');
    if (!isCount(raw.step)) throw bad('optimizer has no valid "step"');
    const [m, v] = cutBin(await src.read('optimizer.bin', o.bytes), src.file('optimizer.bin'), o.bytes, o.lists);
    if (!sameNames(m, v)) throw bad('optimizer m and v name different parameters');
    for (const [name, t] of m) {
      const p = tensors.get(name);
      if (!p) throw bad(`optimizer state for "${name}", which is not in the weights`);
      if (fmtShape(p.shape) !== fmtShape(t.shape)) {
        throw bad(`optimizer state for "${name}" has shape ${fmtShape(t.shape)} but the weight has ${fmtShape(p.shape)}`);
      }
    }
    optimizer = { step: raw.step, m, v };
  }
  return { ...common, tensors, ...(optimizer ? { optimizer } : {}), from: src.shown, format: LEGACY_CHECKPOINT_FORMAT };
}

/**
 * Format 2: the weights from model.safetensors and, when `withOptimizer` and the folder has one, AdamW's state from
 * optimizer.safetensors (tensors `m/<param>` and `v/<param>` for the same parameters, shaped like them; the step in
 * `__metadata__.step`, a decimal string).
 */
async function readSafetensorFiles(src: CheckpointSource, withOptimizer: boolean): Promise<{ tensors: Map<string, LoadedTensor>; optimizer?: LoadedOptimizer }> {
  const tensors = readSafetensors(await src.read(MODEL_FILE), src.file(MODEL_FILE)).tensors;
  if (!withOptimizer) return { tensors };
  if (!src.readIfPresent) throw new Error('parseCheckpoint: reading optimizer state needs CheckpointSource.readIfPresent');
  const bytes = await src.readIfPresent(OPTIMIZER_FILE);
  if (!bytes) return { tensors };
  const shown = src.file(OPTIMIZER_FILE);
  const bad = (cause: string) => new UserError(`${shown}: ${cause}`);
  const file = readSafetensors(bytes, shown);
  const stepText = file.metadata.step;
  const step = stepText !== undefined && /^(0|[1-9][0-9]*)$/.test(stepText) ? Number(stepText) : NaN;
  if (!Number.isSafeInteger(step)) throw bad('has no valid "step" in __metadata__ (a decimal count, e.g. {"step": "123"})');
  const m = new Map<string, LoadedTensor>();
  const v = new Map<string, LoadedTensor>();
  for (const [name, t] of file.tensors) {
    const which = name.startsWith(MOMENT_PREFIXES.m) ? m : name.startsWith(MOMENT_PREFIXES.v) ? v : null;
    if (!which) throw bad(`tensor "${name}" is neither m/<parameter> nor v/<parameter>`);
    const param = name.slice(2);
    const p = tensors.get(param);
    if (!p) throw bad(`optimizer state for "${param}", which is not in ${MODEL_FILE}`);
    if (fmtShape(p.shape) !== fmtShape(t.shape) || t.dtype !== p.dtype) {
      throw bad(`tensor "${name}" is ${t.dtype} ${fmtShape(t.shape)} but the weight is ${p.dtype} ${fmtShape(p.shape)}`);
    }
    which.set(param, t);
  }
  if (!sameNames(m, v)) throw bad('m/ and v/ tensors name different parameters');
  return { tensors, optimizer: { step, m, v } };
}

/**
 * Copies loaded tensors into a model's variables. All-or-nothing: every variable needs a checkpoint tensor
 * of the same shape and dtype and the checkpoint may hold nothing else; otherwise throws one UserError line
 * listing what does not match, prefixed with `where` (usually the checkpoint folder).
 */
export function assignParams(vars: Map<string, tf.Variable>, loaded: Map<string, LoadedTensor>, where: string): void {
  const model = new Map([...vars].map(([n, v]) => [n, { shape: v.shape, dtype: v.dtype as string }]));
  const mismatch = describeMismatch(model, loaded);
  if (mismatch) throw new UserError(`${where}: checkpoint does not match the model: ${mismatch}`);
  for (const [name, v] of vars) {
    const t = loaded.get(name) as LoadedTensor;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, t.dtype)));
  }
}

