/**
 * Checkpoints: one folder per checkpoint.
 *
 *   config.json    { format: 1, kind, config, step, rng?, extra?, weights: Index, optimizer?: Index & { step } }
 *                  The tensor indexes live in config.json itself (not a separate weights.json) so that one
 *                  JSON file describes the whole folder.
 *   weights.bin    all parameter tensors back to back, little-endian, in `weights.entries` order.
 *   optimizer.bin  AdamW moments: `optimizer.m` entries then `optimizer.v` entries, same encoding.
 *
 * An Index is `{ file, bytes, entries: { name, shape, dtype, offset, length }[] }`; offset and length are in
 * BYTES within `file`, and `bytes` is the file's exact size.
 *
 * Saving is atomic: everything is written and fsynced into a sibling `<dir>.tmp-<pid>-<n>`, then the current
 * `<dir>` (if any) is renamed to `<dir>.old-<pid>-<n>`, the temp folder is renamed to `<dir>`, and the old one is
 * removed. At every instant a complete checkpoint exists at `<dir>` or at `<dir>.old-*`; loadCheckpoint falls
 * back to the newest loadable `<dir>.old-*` when `<dir>` is missing (a crash between the two renames).
 * Leftover `.tmp-*` / `.old-*` siblings of dead processes are removed by the next successful save.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from './errors';
import type { AdamState } from './optim';
import type { RngState } from './rng';

export const CHECKPOINT_FORMAT = 1;

export type TensorDtype = 'float32' | 'int32';

/** A tensor as plain data (no tf memory): what loadCheckpoint returns. */
export type LoadedTensor = { shape: number[]; dtype: TensorDtype; data: Float32Array | Int32Array };

/** AdamW state as plain data; m and v have the same names as the parameters they belong to. */
export type LoadedOptimizer = { step: number; m: Map<string, LoadedTensor>; v: Map<string, LoadedTensor> };

export type IndexEntry = { name: string; shape: number[]; dtype: TensorDtype; offset: number; length: number };

/** What to save. `params` are usually ParamStore.vars; `config` and `extra` must be JSON-safe plain data. */
export type CheckpointData = {
  kind: string;
  config: object;
  step: number;
  params: Map<string, tf.Tensor>;
  optimizer?: AdamState;
  rng?: RngState;
  extra?: object;
};

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
};

/** The filesystem operations saveCheckpoint uses; tests replace one of them to inject failures. */
export type CheckpointIo = {
  mkdir(dir: string): Promise<void>;
  /** Creates `file` with the chunks' bytes and fsyncs it. */
  writeFile(file: string, chunks: Uint8Array[]): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** fsyncs a folder so renames inside it are durable (best effort: some platforms refuse). */
  syncDir(dir: string): Promise<void>;
};

const nodeIo: CheckpointIo = {
  async mkdir(dir) {
    await fsp.mkdir(dir);
  },
  async writeFile(file, chunks) {
    const h = await fsp.open(file, 'w');
    try {
      for (const chunk of chunks) {
        let done = 0;
        while (done < chunk.byteLength) done += (await h.write(chunk, done, chunk.byteLength - done)).bytesWritten;
      }
      await h.sync();
    } finally {
      await h.close();
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  async syncDir(dir) {
    try {
      const h = await fsp.open(dir, 'r');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    } catch {
      // folders cannot be fsynced on every platform; the data files themselves were synced
    }
  },
};

const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Byte-swaps 4-byte words in a copy (only on big-endian hosts: the files are little-endian). */
function swap32(bytes: Uint8Array): Uint8Array {
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

/** A one-line cause for an fs error: "ENOSPC: no space left on device" (without the syscall and path). */
function describeError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && typeof err.message === 'string') return err.message.split(',')[0];
  return String(err instanceof Error ? err.message : e).split('\n')[0];
}

/**
 * Reads tensors into plain arrays (no tf memory kept). Throws (a bug) on dtypes other than float32/int32.
 * The arrays may be the backend's own storage (cpu backend): read them, do not modify them.
 */
export async function readTensors(tensors: Map<string, tf.Tensor>): Promise<Map<string, LoadedTensor>> {
  // All reads start before the first await, so the snapshot is of one instant of the training loop.
  const pending = [...tensors].map(([name, t]) => {
    if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new Error(`checkpoint: tensor ${name} has dtype ${t.dtype}`);
    return [name, t.shape.slice(), t.dtype, t.data()] as const;
  });
  const out = new Map<string, LoadedTensor>();
  for (const [name, shape, dtype, data] of pending) {
    out.set(name, { shape, dtype, data: (await data) as Float32Array | Int32Array });
  }
  return out;
}

/** AdamState (tensors) -> plain arrays; the inverse of restoreAdamState. */
export async function readAdamState(state: AdamState): Promise<LoadedOptimizer> {
  const mNames = [...state.m.keys()].sort().join('\n');
  const vNames = [...state.v.keys()].sort().join('\n');
  if (mNames !== vNames) throw new Error('checkpoint: optimizer m and v have different parameter names');
  const [m, v] = await Promise.all([readTensors(state.m), readTensors(state.v)]);
  return { step: state.step, m, v };
}

/** Plain optimizer arrays -> AdamState with fresh tensors (owned by the caller: disposeAdamState). */
export function restoreAdamState(loaded: LoadedOptimizer): AdamState {
  const toTensors = (src: Map<string, LoadedTensor>) =>
    new Map([...src].map(([name, t]) => [name, tf.tensor(t.data, t.shape, t.dtype)] as const));
  return { step: loaded.step, m: toTensors(loaded.m), v: toTensors(loaded.v) };
}

/** Lays tensors out back to back: the index entries (byte offsets from `start`) and the byte chunks to write. */
function pack(tensors: Map<string, LoadedTensor>, start = 0): { entries: IndexEntry[]; chunks: Uint8Array[]; end: number } {
  const entries: IndexEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = start;
  for (const [name, t] of tensors) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    entries.push({ name, shape: t.shape, dtype: t.dtype, offset, length: bytes.byteLength });
    chunks.push(LITTLE_ENDIAN ? bytes : swap32(bytes));
    offset += bytes.byteLength;
  }
  return { entries, chunks, end: offset };
}

let saveCounter = 0;
const savesInFlight = new Set<string>();

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sibling `<base>.tmp-*` / `<base>.old-*` folders of `target`, with the pid that made them. */
async function siblings(target: string, which: 'tmp' | 'old'): Promise<{ path: string; pid: number }[]> {
  const parent = path.dirname(target);
  const prefix = `${path.basename(target)}.${which}-`;
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(prefix) && /^\d+-\d+$/.test(n.slice(prefix.length)))
    .map((n) => ({ path: path.join(parent, n), pid: Number(n.slice(prefix.length).split('-')[0]) }));
}

/** Removes leftovers of interrupted saves: folders of dead processes, and our own that no save is using. */
async function removeLeftovers(target: string, which: 'tmp' | 'old'): Promise<void> {
  for (const s of await siblings(target, which)) {
    if (savesInFlight.has(s.path) || (s.pid !== process.pid && isAlive(s.pid))) continue;
    await fsp.rm(s.path, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * Atomically writes a checkpoint folder at `dir` (replacing a previous checkpoint there; see the file comment).
 * Await it before the next training step: tensors are read when it is called.
 * Throws UserError(`<dir>: could not save checkpoint (<cause>)`) and leaves the previous checkpoint intact
 * when anything fails. `io` replaces filesystem operations (tests inject failures with it).
 */
export async function saveCheckpoint(dir: string, ck: CheckpointData, io: Partial<CheckpointIo> = {}): Promise<void> {
  const ops: CheckpointIo = { ...nodeIo, ...io };
  const target = path.resolve(dir); // also drops a trailing slash, which would put the temp folder inside dir
  if (!Number.isSafeInteger(ck.step) || ck.step < 0) throw new Error(`checkpoint: bad step ${ck.step}`);

  // Both reads start before any await, so params and moments are a snapshot of the same step.
  const [params, opt] = await Promise.all([readTensors(ck.params), ck.optimizer ? readAdamState(ck.optimizer) : undefined]);
  const weights = pack(params);
  let optimizer: { index: object; chunks: Uint8Array[] } | undefined;
  if (opt) {
    for (const name of opt.m.keys()) {
      if (!ck.params.has(name)) throw new Error(`checkpoint: optimizer state for unknown parameter ${name}`);
    }
    const m = pack(opt.m);
    const v = pack(opt.v, m.end);
    optimizer = {
      index: { file: 'optimizer.bin', step: opt.step, bytes: v.end, m: m.entries, v: v.entries },
      chunks: [...m.chunks, ...v.chunks],
    };
  }
  const json = {
    format: CHECKPOINT_FORMAT,
    kind: ck.kind,
    config: ck.config,
    step: ck.step,
    ...(ck.rng ? { rng: ck.rng } : {}),
    ...(ck.extra ? { extra: ck.extra } : {}),
    weights: { file: 'weights.bin', bytes: weights.end, entries: weights.entries },
    ...(optimizer ? { optimizer: optimizer.index } : {}),
  };
  const configBytes = new TextEncoder().encode(JSON.stringify(json, null, 1) + '\n');

  const n = saveCounter++;
  const tmp = `${target}.tmp-${process.pid}-${n}`;
  let old: string | null = null;
  savesInFlight.add(tmp);
  try {
    const existing = await fsp.stat(target).catch(() => null);
    if (existing && !(existing.isDirectory() && (await isCheckpointOrEmpty(target)))) {
      // Never rename away (and then delete) something that is not ours, e.g. `--out .`.
      throw new UserError(`${dir}: exists and is not a checkpoint folder (refusing to replace it)`);
    }
    await removeLeftovers(target, 'tmp');
    const parent = path.dirname(target);
    await fsp.mkdir(parent, { recursive: true }).catch(async (e: NodeJS.ErrnoException) => {
      // mkdir says EEXIST when the parent is a file: name the real problem instead.
      if (e.code === 'EEXIST' && !(await fsp.stat(parent)).isDirectory()) throw new Error(`${parent} is a file, not a folder`);
      throw e;
    });
    await fsp.rm(tmp, { recursive: true, force: true });
    await ops.mkdir(tmp);
    await ops.writeFile(path.join(tmp, 'weights.bin'), weights.chunks);
    if (optimizer) await ops.writeFile(path.join(tmp, 'optimizer.bin'), optimizer.chunks);
    await ops.writeFile(path.join(tmp, 'config.json'), [configBytes]);
    await ops.syncDir(tmp);
    if (existing) {
      old = `${target}.old-${process.pid}-${n}`;
      savesInFlight.add(old);
      await ops.rename(target, old);
    }
    try {
      await ops.rename(tmp, target);
    } catch (e) {
      if (old) await ops.rename(old, target).catch(() => {}); // put the previous checkpoint back
      throw e;
    }
    await ops.syncDir(path.dirname(target));
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (old) savesInFlight.delete(old);
    if (e instanceof UserError) throw e;
    throw new UserError(`${dir}: could not save checkpoint (${describeError(e)})`);
  } finally {
    savesInFlight.delete(tmp);
  }
  // The new checkpoint is in place: previous ones are garbage now.
  if (old) {
    await fsp.rm(old, { recursive: true, force: true }).catch(() => {});
    savesInFlight.delete(old);
  }
  await removeLeftovers(target, 'old');
}

async function isCheckpointOrEmpty(dir: string): Promise<boolean> {
  const names = await fsp.readdir(dir);
  return names.length === 0 || names.includes('config.json');
}

// ---- loading -------------------------------------------------------------------------------------------

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

/** Reads a binary file whose exact size the index states, and cuts it into tensors (aligned copies). */
async function readBin(file: string, shown: string, bytes: number, lists: IndexEntry[][]): Promise<Map<string, LoadedTensor>[]> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    throw new UserError(`${shown}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `unreadable (${describeError(e)})`}`);
  }
  if (buf.byteLength < bytes) throw new UserError(`${shown}: truncated: expected ${bytes} bytes, found ${buf.byteLength}`);
  if (buf.byteLength > bytes) throw new UserError(`${shown}: wrong size: expected ${bytes} bytes, found ${buf.byteLength}`);
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

/** Loads and validates the checkpoint in `folder`; `shown` is how messages name it. */
async function loadFrom(folder: string, shown: string, expectKind?: string): Promise<LoadedCheckpoint> {
  const configFile = path.join(shown, 'config.json');
  let text: string;
  try {
    text = await fsp.readFile(path.join(folder, 'config.json'), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${configFile}: missing (not a factorgen checkpoint folder)`);
    throw new UserError(`${configFile}: unreadable (${describeError(e)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${configFile}: invalid JSON (${describeError(e)})`);
  }
  const bad = (cause: string) => new UserError(`${configFile}: ${cause}`);
  if (!isObject(json)) throw bad('not a JSON object');
  const format = json.format;
  if (!isCount(format) || format < 1) throw bad(`unknown format ${JSON.stringify(format)} (this version reads ${CHECKPOINT_FORMAT})`);
  if (format > CHECKPOINT_FORMAT) {
    throw bad(`was written by a newer factorgen (format ${format}, this version reads ${CHECKPOINT_FORMAT})`);
  }
  if (typeof json.kind !== 'string' || json.kind === '') throw bad('missing "kind"');
  if (expectKind !== undefined && json.kind !== expectKind) {
    throw new UserError(`${shown}: expected a ${expectKind} checkpoint, found a ${json.kind} checkpoint`);
  }
  if (!isObject(json.config)) throw bad('missing "config" object');
  if (!isCount(json.step)) throw bad('missing or invalid "step"');
  if (json.rng !== undefined && !isRngState(json.rng)) throw bad('invalid "rng" state');
  if (json.extra !== undefined && !isObject(json.extra)) throw bad('"extra" is not an object');

  const w = checkIndex(json.weights, 'weights', configFile);
  if (!isObject(json.weights) || json.weights.file !== 'weights.bin') throw bad('weights index must name file "weights.bin"');
  const [tensors] = await readBin(path.join(folder, 'weights.bin'), path.join(shown, 'weights.bin'), w.bytes, w.lists);

  let optimizer: LoadedOptimizer | undefined;
  if (json.optimizer !== undefined) {
    const raw = json.optimizer;
    const o = checkIndex(raw, 'optimizer', configFile);
    if (!isObject(raw) || raw.file !== 'optimizer.bin') throw bad('optimizer index must name file "optimizer.bin"');
    if (!isCount(raw.step)) throw bad('optimizer has no valid "step"');
    const [m, v] = await readBin(path.join(folder, 'optimizer.bin'), path.join(shown, 'optimizer.bin'), o.bytes, o.lists);
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
  return {
    kind: json.kind,
    config: json.config,
    step: json.step,
    ...(json.rng !== undefined ? { rng: json.rng as RngState } : {}),
    ...(json.extra !== undefined ? { extra: json.extra as Record<string, unknown> } : {}),
    tensors,
    ...(optimizer ? { optimizer } : {}),
    from: shown,
  };
}

/**
 * Reads and validates the checkpoint folder `dir` (optionally requiring its kind). Returns plain arrays, so
 * nothing needs disposing. When `dir` is missing but a save was interrupted between its two renames, loads the
 * newest loadable `<dir>.old-*` instead (`from` says which). Every problem is a one-line UserError naming the
 * folder or file.
 */
export async function loadCheckpoint(dir: string, expectKind?: string): Promise<LoadedCheckpoint> {
  const target = path.resolve(dir);
  const st = await fsp.stat(target).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : e));
  if (st instanceof Error) throw new UserError(`${dir}: unreadable (${describeError(st)})`);
  if (st) {
    if (!st.isDirectory()) throw new UserError(`${dir}: not a checkpoint folder (it is a file)`);
    return loadFrom(target, dir, expectKind);
  }
  const olds = await Promise.all(
    (await siblings(target, 'old')).map(async (s) => ({ ...s, mtime: (await fsp.stat(s.path).catch(() => null))?.mtimeMs ?? -1 })),
  );
  olds.sort((a, b) => b.mtime - a.mtime);
  let firstError: unknown = null;
  for (const o of olds) {
    try {
      return await loadFrom(o.path, path.join(path.dirname(dir), path.basename(o.path)), expectKind);
    } catch (e) {
      firstError ??= e;
    }
  }
  if (firstError) throw firstError;
  throw new UserError(`${dir}: no such checkpoint folder`);
}

/**
 * Copies loaded tensors into a model's variables. All-or-nothing: every variable needs a checkpoint tensor
 * of the same shape and dtype and the checkpoint may hold nothing else; otherwise throws one UserError line
 * listing what does not match, prefixed with `where` (usually the checkpoint folder).
 */
export function assignParams(vars: Map<string, tf.Variable>, loaded: Map<string, LoadedTensor>, where: string): void {
  const missing = [...vars.keys()].filter((n) => !loaded.has(n));
  const unexpected = [...loaded.keys()].filter((n) => !vars.has(n));
  const mismatched: string[] = [];
  for (const [name, v] of vars) {
    const t = loaded.get(name);
    if (!t) continue;
    if (fmtShape(t.shape) !== fmtShape(v.shape)) mismatched.push(`${name}: checkpoint ${fmtShape(t.shape)} vs model ${fmtShape(v.shape)}`);
    else if (t.dtype !== v.dtype) mismatched.push(`${name}: checkpoint ${t.dtype} vs model ${v.dtype}`);
  }
  if (missing.length || unexpected.length || mismatched.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${listShort(missing)}`);
    if (unexpected.length) parts.push(`unexpected ${listShort(unexpected)}`);
    if (mismatched.length) parts.push(listShort(mismatched, '; '));
    throw new UserError(`${where}: checkpoint does not match the model: ${parts.join('; ')}`);
  }
  for (const [name, v] of vars) {
    const t = loaded.get(name) as LoadedTensor;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, t.dtype)));
  }
}

/** "a, b, c and 4 more": keeps error messages to one short line. */
function listShort(items: string[], sep = ', ', max = 3): string {
  const head = items.slice(0, max).join(sep);
  return items.length > max ? `${head} and ${items.length - max} more` : head;
}

/**
 * Whether `dir` holds a checkpoint loadCheckpoint can find: `dir/config.json`, or a leftover
 * `<dir>.old-*` from an interrupted save. Cheap (no validation); for "refuse to overwrite" / "--resume needs one".
 */
export function hasCheckpoint(dir: string): boolean {
  const target = path.resolve(dir);
  if (fs.existsSync(path.join(target, 'config.json'))) return true;
  if (fs.existsSync(target)) return false;
  const prefix = `${path.basename(target)}.old-`;
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.dirname(target));
  } catch {
    return false;
  }
  return names.some((n) => n.startsWith(prefix) && fs.existsSync(path.join(path.dirname(target), n, 'config.json')));
}
