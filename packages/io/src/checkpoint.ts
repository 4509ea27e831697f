/**
 * Checkpoints: one folder per checkpoint (docs/formats.md, "Checkpoint folder").
 *
 * Format 2 (written by default):
 *   config.json            { format: 2, kind, config, step, rng?, extra? }
 *   model.safetensors      every parameter tensor (safetensors.ts), named as the model names its variables, in
 *                          tfjs layouts (dense kernels [in, out], conv kernels HWIO), F32 (I32 for int tensors).
 *   optimizer.safetensors  training state only: AdamW moments as `m/<param>` and `v/<param>`, the optimizer step
 *                          in `__metadata__` as `{"step": "<n>"}`.
 *
 * Format 1 (legacy: still read; written by `factorgen export --format factorgen` for older readers):
 *   config.json    { format: 1, kind, config, step, rng?, extra?, weights: Index, optimizer?: Index & { step } }
 *   weights.bin    all parameter tensors back to back, little-endian, in `weights.entries` order.
 *   optimizer.bin  AdamW moments: `optimizer.m` entries then `optimizer.v` entries, same encoding.
 * An Index is `{ file, bytes, entries: { name, shape, dtype, offset, length }[] }`; offset and length are in
 * BYTES within `file`, and `bytes` is the file's exact size.
 *
 * Both formats hold the same tensors with the same bytes, and config.json's `config` and `extra` are the same JSON:
 * ids computed from a checkpoint (a tokenizer's id: config and tensors) do not depend on the format.
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
import * as path from 'node:path';
import { CHECKPOINT_FORMAT, checkBinSize, LEGACY_CHECKPOINT_FORMAT, LITTLE_ENDIAN, MODEL_FILE, MOMENT_PREFIXES, OPTIMIZER_FILE, parseCheckpoint, swap32, type CheckpointFormat, type LoadedCheckpoint, type LoadedOptimizer, type LoadedTensor, type IndexEntry } from '@factorgen/formats';
import { serializeSafetensors } from '@factorgen/formats';
import { UserError } from '@factorgen/tfjs-ext';
import { describeReadError, readSmallFile } from './fsErrors';
import type { AdamState } from '@factorgen/nn';
import type { RngState } from '@factorgen/nn';



/** What to save. `params` are usually ParamStore.vars; `config` and `extra` must be JSON-safe plain data. */
export type CheckpointData = {
  kind: string;
  config: object;
  step: number;
  params: Map<string, tf.Tensor>;
  optimizer?: AdamState;
  rng?: RngState;
  extra?: object;
  /** The format to write: CHECKPOINT_FORMAT (default, safetensors) or LEGACY_CHECKPOINT_FORMAT (weights.bin). */
  format?: CheckpointFormat;
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
  if (opt) {
    for (const name of opt.m.keys()) {
      if (!ck.params.has(name)) throw new Error(`checkpoint: optimizer state for unknown parameter ${name}`);
    }
  }
  const format = ck.format ?? CHECKPOINT_FORMAT;
  const common = {
    format,
    kind: ck.kind,
    config: ck.config,
    step: ck.step,
    ...(ck.rng ? { rng: ck.rng } : {}),
    ...(ck.extra ? { extra: ck.extra } : {}),
  };
  // The data files to write (name -> chunks), and config.json's content.
  const files: [string, Uint8Array[]][] = [];
  let json: object;
  if (format === LEGACY_CHECKPOINT_FORMAT) {
    const weights = pack(params);
    files.push(['weights.bin', weights.chunks]);
    let optimizerIndex: object | undefined;
    if (opt) {
      const m = pack(opt.m);
      const v = pack(opt.v, m.end);
      optimizerIndex = { file: 'optimizer.bin', step: opt.step, bytes: v.end, m: m.entries, v: v.entries };
      files.push(['optimizer.bin', [...m.chunks, ...v.chunks]]);
    }
    json = {
      ...common,
      weights: { file: 'weights.bin', bytes: weights.end, entries: weights.entries },
      ...(optimizerIndex ? { optimizer: optimizerIndex } : {}),
    };
  } else {
    files.push([MODEL_FILE, serializeSafetensors(params)]);
    if (opt) {
      const moments = new Map<string, LoadedTensor>();
      for (const [name, t] of opt.m) moments.set(MOMENT_PREFIXES.m + name, t);
      for (const [name, t] of opt.v) moments.set(MOMENT_PREFIXES.v + name, t);
      files.push([OPTIMIZER_FILE, serializeSafetensors(moments, { step: String(opt.step) })]);
    }
    json = common;
  }
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
    for (const [name, chunks] of files) await ops.writeFile(path.join(tmp, name), chunks);
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

/** The largest weights file read (Node reads a file into one Buffer of at most 2 GiB). */
const MAX_WEIGHTS_FILE = 2 ** 31 - 1;

/** Loads and validates the checkpoint in `folder`; `shown` is how messages name it. */
async function loadFrom(folder: string, shown: string, expectKind?: string): Promise<LoadedCheckpoint> {
  const configFile = path.join(shown, 'config.json');
  let text: string;
  try {
    // A regular file of bounded size: a FIFO or a device in its place is refused, not waited on or read forever.
    text = readSmallFile(path.join(folder, 'config.json')).toString('utf8');
  } catch (e) {
    if (e instanceof UserError) {
      const cause = e.message.slice(path.join(folder, 'config.json').length + 2);
      throw new UserError(`${configFile}: ${cause === 'no such file' ? 'missing (not a factorgen checkpoint folder)' : cause}`);
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${configFile}: missing (not a factorgen checkpoint folder)`);
    throw new UserError(`${configFile}: ${describeReadError(e)}`);
  }
  return parseCheckpoint(text, {
    shown,
    file: (name) => path.join(shown, name),
    async read(name, bytes) {
      try {
        // Sized before read: a device file, a FIFO or a file of another size is refused without reading it.
        const st = await fsp.stat(path.join(folder, name));
        if (!st.isFile()) throw new UserError(`${path.join(shown, name)}: not a regular file`);
        if (bytes !== undefined) checkBinSize(path.join(shown, name), bytes, st.size);
        // A self-describing file (safetensors) has no stated size to check; past what one read can hold it is refused
        // from its size, not read (a sparse or corrupt 64 GiB file).
        else if (st.size > MAX_WEIGHTS_FILE) throw new UserError(`${path.join(shown, name)}: ${st.size} bytes, more than the ${MAX_WEIGHTS_FILE} a weights file can have`);
        return await fsp.readFile(path.join(folder, name));
      } catch (e) {
        if (e instanceof UserError) throw e;
        const cause = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : describeReadError(e);
        throw new UserError(`${path.join(shown, name)}: ${cause}`);
      }
    },
    async readIfPresent(name) {
      try {
        const st = await fsp.stat(path.join(folder, name));
        if (!st.isFile()) throw new UserError(`${path.join(shown, name)}: not a regular file`);
        return await fsp.readFile(path.join(folder, name));
      } catch (e) {
        if (e instanceof UserError) throw e;
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new UserError(`${path.join(shown, name)}: ${describeReadError(e)}`);
      }
    },
  }, expectKind);
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
  if (st instanceof Error) throw new UserError(`${dir}: ${describeReadError(st, 'folder')}`);
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
