/**
 * Output folders: an exclusive lock per folder, a manifest of what factorgen wrote there, `--overwrite` that removes
 * only those files, and checks that a folder can be written before any work starts.
 *
 *   OUT/.factorgen.lock   {"pid","host","command","started"} of the process writing OUT; created atomically (written to
 *                         a temporary name, then hard-linked into place), removed when the process exits. A lock
 *                         whose pid is dead on this host is stale and taken over.
 *   OUT/.factorgen.json   {"factorgen":1,"kind","paths"}: what kind of output OUT holds and the files (relative paths)
 *                         factorgen wrote there; written before the files themselves, so a killed run leaves them listed.
 *
 * proper-lockfile was considered: its staleness is an mtime refreshed by a timer, which cannot fire while a
 * synchronous training step blocks the event loop (a busy run would look stale and be taken over), and it does not
 * record who holds a lock. A pid file does both.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '@factorgen/tfjs-ext';
import { describeNotAFolder } from './fsErrors';
import { OPTIMIZER_FILE } from '@factorgen/formats';

export const LOCK_FILE = '.factorgen.lock';
export const MANIFEST_FILE = '.factorgen.json';

/** The write operations on output folders; tests replace one to inject failures (tests run as root, which ignores permission bits). */
export type OutputIo = {
  mkdir(dir: string): void;
  /** Writes a whole file (flag 'w'). */
  writeFile(file: string, data: string | Uint8Array): void;
  /** Hard-links `from` to `to`; fails with EEXIST when `to` exists. */
  link(from: string, to: string): void;
  unlink(file: string): void;
};

export const nodeOutputIo: OutputIo = {
  mkdir: (dir) => makeFolders(dir),
  writeFile: (file, data) => fs.writeFileSync(file, data),
  link: (from, to) => fs.linkSync(from, to),
  unlink: (file) => fs.unlinkSync(file),
};

const withIo = (io?: Partial<OutputIo>): OutputIo => ({ ...nodeOutputIo, ...io });

/**
 * A write failure in words: "read-only (EROFS: read-only file system)", "not writable (EACCES: permission denied)",
 * "is a folder, expected a file", "<ancestor> is a file, not a folder" (describeNotAFolder), "cannot write (ENOSPC: …)".
 */
/**
 * Creates folder `dir` and its missing parents, one level at a time. Node's recursive mkdir reports ENOENT when a
 * parent cannot be made on a read-only mount; made level by level, the error is the true one (EROFS, EACCES, ENOTDIR).
 * Throws the fs error of the first level that cannot be made (describeWriteError words it).
 */
export function makeFolders(dir: string): void {
  const target = path.resolve(dir);
  const missing: string[] = [];
  for (let d = target; !fs.existsSync(d); d = path.dirname(d)) {
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      // Made meanwhile by another process: fine; anything else is the real cause.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw e;
    }
  }
}

export function describeWriteError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const cause = typeof err?.code === 'string' && typeof err.message === 'string' ? err.message.split(',')[0] : String((e as Error)?.message ?? e);
  if (err?.code === 'EROFS') return `read-only (${cause})`;
  if (err?.code === 'EACCES' || err?.code === 'EPERM') return `not writable (${cause})`;
  if (err?.code === 'EISDIR') return 'is a folder, expected a file';
  if (err?.code === 'ENOTDIR') return describeNotAFolder(err);
  return `cannot write (${cause})`;
}

const statOrNull = (p: string): fs.Stats | null => {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
};

/**
 * Makes sure `dir` is a folder this process can write: creates it (and its parents) and writes and removes a probe
 * file. `field` names it in errors ('out'). UserError: a file in the way, a read-only or unwritable folder.
 */
export function checkOutputDir(dir: string, field: string, io?: Partial<OutputIo>): void {
  const ops = withIo(io);
  const st = statOrNull(dir);
  if (st && !st.isDirectory()) throw new UserError('is a file, not a folder', { field, value: dir });
  try {
    ops.mkdir(dir);
  } catch (e) {
    throw new UserError(describeWriteError(e), { field, value: dir });
  }
  const probe = path.join(dir, `.factorgen-probe-${process.pid}`);
  try {
    ops.writeFile(probe, '');
  } catch (e) {
    throw new UserError(describeWriteError(e), { field, value: dir });
  }
  try {
    ops.unlink(probe);
  } catch {
    // best effort: a probe left behind is harmless (and ours: --overwrite removes it)
  }
}

/**
 * Makes sure `file` can be written before the work that produces it starts: it is not a folder, and its folder exists
 * (created) and is writable. An existing file is replaced only with `overwrite`, and then, when `magic` is given,
 * only if it starts with those bytes (a file of the kind the command writes). UserError on `field` otherwise.
 */
export function checkOutputFile(file: string, field: string, opts: { overwrite: boolean; magic?: string }, io?: Partial<OutputIo>): void {
  refuseRunCheckpoint(file, field);
  const st = statOrNull(file);
  if (st?.isDirectory()) throw new UserError('is a folder, not a file', { field, value: file });
  if (st && !opts.overwrite) throw new UserError(`already exists; pass \`overwrite\` to replace it`, { field, value: file });
  if (st && opts.magic !== undefined && !startsWith(file, opts.magic)) {
    throw new UserError(`already exists and is not a file factorgen writes here (it does not start with ${JSON.stringify(opts.magic)}); \`overwrite\` replaces only those`, { field, value: file });
  }
  const dir = path.dirname(path.resolve(file));
  const dst = statOrNull(dir);
  if (dst && !dst.isDirectory()) throw new UserError(`${path.dirname(file)} is a file, not a folder`, { field, value: file });
  try {
    checkOutputDir(dir, field, io);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(e.detail, { field, value: file });
    throw e;
  }
}

/** Whether `file` starts with the latin1 bytes of `magic` (false when unreadable or shorter). */
function startsWith(file: string, magic: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(magic.length);
      return fs.readSync(fd, buf, 0, magic.length, 0) === magic.length && buf.toString('latin1') === magic;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

// ---- locks ---------------------------------------------------------------------------------------------

type LockInfo = { pid: number; host: string; command: string; started: string; procStart?: string };

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When process `pid` started, as the kernel says (Linux: boot id + start time in clock ticks, /proc/PID/stat field
 * 22), so that a lock whose pid was reused by another process (after a kill -9, in a container where every run is
 * pid 1) is told from a live one; null where /proc is not available.
 */
function processStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return `${boot}/${fields[19]}`;
  } catch {
    return null;
  }
}

/** Whether live process `pid` could be a factorgen run (a node process), judged by its command line where readable. */
function couldBeFactorgen(pid: number): boolean {
  try {
    return /node|factorgen/i.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // cannot tell: keep it
  }
}

function readLock(file: string): { info: LockInfo | null; raw: string } | null {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch {
    return null; // gone
  }
  try {
    const j = JSON.parse(raw) as LockInfo;
    return { info: typeof j.pid === 'number' ? j : null, raw };
  } catch {
    return { info: null, raw };
  }
}

/**
 * Whether a lock still belongs to a running process: its pid is alive and is the same process (its recorded start
 * time matches; for older locks without one, a node process). On another host we cannot tell: it counts as held.
 */
function held(info: LockInfo | null): boolean {
  if (!info) return false;
  if (info.host !== os.hostname()) return true;
  if (info.pid === process.pid) return true;
  if (!isAlive(info.pid)) return false;
  const now = processStart(info.pid);
  if (info.procStart !== undefined && now !== null) return now === info.procStart;
  return couldBeFactorgen(info.pid);
}

export type OutputLock = { dir: string; release(): void };

const heldLocks = new Map<string, () => void>(); // lock file -> its release, run at exit at the latest
let exitHookInstalled = false;

/** The output folders this process holds locks on now (what an interrupted command leaves incomplete). */
export function heldOutputDirs(): string[] {
  return [...heldLocks.keys()].map((f) => path.dirname(f));
}

/** Output files a running command writes whole at its end (a token file, a JSON report): unwritten until then. */
const pendingFiles = new Set<string>();

/**
 * Records that this process will write `file` whole when its work is done, so an interrupt can say it was not written
 * (rather than leave the user to guess whether a partial file exists). Returns the function that clears the record,
 * to call once the file is written.
 */
export function pendingOutputFile(file: string): () => void {
  pendingFiles.add(file);
  return () => void pendingFiles.delete(file);
}

/** The files recorded by pendingOutputFile and not yet written. */
export function pendingOutputFiles(): string[] {
  return [...pendingFiles];
}

function releaseAllAtExit(): void {
  for (const release of [...heldLocks.values()]) release();
}

/**
 * Takes the exclusive lock of output folder `dir` (created if missing) for `command` ("generator train"). Released by
 * release(), and at the latest when the process exits (process.exit included; a killed process leaves a stale lock,
 * which the next run detects by its pid). UserError: another process holds it (naming it), or `dir` cannot be written.
 */
export function lockOutputDir(dir: string, field: string, command: string, io?: Partial<OutputIo>): OutputLock {
  const ops = withIo(io);
  const created = !fs.existsSync(dir);
  checkOutputDir(dir, field, io);
  const file = path.resolve(dir, LOCK_FILE);
  const procStart = processStart(process.pid);
  const content = JSON.stringify({
    pid: process.pid,
    host: os.hostname(),
    command,
    started: new Date().toISOString(),
    ...(procStart !== null ? { procStart } : {}),
  } satisfies LockInfo);
  const tmp = `${file}.${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    ops.writeFile(tmp, content);
  } catch (e) {
    throw new UserError(describeWriteError(e), { field, value: dir });
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        try {
          ops.link(tmp, file);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EEXIST') throw e;
          // file systems without hard links: an exclusive create (the content may be seen half-written for an instant)
          fs.writeFileSync(file, content, { flag: 'wx' });
        }
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(describeWriteError(e), { field, value: dir });
        const cur = readLock(file);
        if (cur && held(cur.info)) {
          const i = cur.info!;
          const who = i.pid === process.pid && i.host === os.hostname() ? 'this process' : `pid ${i.pid}${i.host === os.hostname() ? '' : ` on ${i.host}`}`;
          // Always say how to clear it: a lock from another host, or one we cannot judge, may be stale.
          const clear = who === 'this process' ? '' : `; if that process is gone, remove ${path.join(dir, LOCK_FILE)}`;
          throw new UserError(`in use by "factorgen ${i.command}" (${who}, started ${i.started}); wait for it to finish or choose another folder${clear}`, { field, value: dir });
        }
        if (attempt >= 3) throw new UserError(`could not take the lock ${LOCK_FILE} (it keeps changing)`, { field, value: dir });
        // Stale (its process is gone): remove it, unless another process replaced it meanwhile.
        if (cur && readLock(file)?.raw === cur.raw) {
          try {
            ops.unlink(file);
          } catch {
            // someone else removed it first
          }
        }
      }
    }
  } finally {
    try {
      ops.unlink(tmp);
    } catch {
      // best effort
    }
  }
  const lock: OutputLock = {
    dir,
    release() {
      if (!heldLocks.has(file)) return;
      heldLocks.delete(file);
      try {
        if (fs.readFileSync(file, 'utf8') === content) fs.unlinkSync(file);
      } catch {
        // already gone
      }
      // A command that failed before writing anything leaves nothing behind: no manifest, no folder it created.
      try {
        const left = fs.readdirSync(dir);
        if (left.length === 1 && left[0] === MANIFEST_FILE && readManifest(dir)?.paths.every((p) => !fs.existsSync(path.join(dir, p)))) {
          fs.unlinkSync(path.join(dir, MANIFEST_FILE));
        }
        if (created) fs.rmdirSync(dir);
      } catch {
        // not empty, or gone
      }
    },
  };
  heldLocks.set(file, () => lock.release());
  if (!exitHookInstalled) {
    process.on('exit', releaseAllAtExit);
    exitHookInstalled = true;
  }
  return lock;
}

// ---- manifests and --overwrite ------------------------------------------------------------------------

/** What an output folder holds: a training run of a model kind, a sample folder, decoded token maps. */
export type OutputKind = 'tokenizer run' | 'generator run' | 'teacher run' | 'samples' | 'decoded tokens' | 'reconstructions' | 'probe' | 'comparison' | 'site';

export type Manifest = { factorgen: 1; kind: OutputKind; paths: string[] };

/** Kinds named in the plural ("already holds samples", not "a samples"). */
const PLURAL_KINDS: ReadonlySet<string> = new Set(['samples', 'decoded tokens', 'reconstructions']);

// A run's files: its metrics and its checkpoint's, in format 2 (safetensors) or the legacy format 1 (.bin).
const RUN_FILE = /^(metrics\.jsonl|checkpoint(\.(tmp|old)-\d+-\d+)?\/(config\.json|model\.safetensors|optimizer\.safetensors|weights\.bin|optimizer\.bin))$/;
const isRunKind = (k: string) => k.endsWith(' run');

/** Reads OUT/.factorgen.json; null when absent or not ours. */
export function readManifest(dir: string): Manifest | null {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
    return j && j.factorgen === 1 && typeof j.kind === 'string' && Array.isArray(j.paths) ? j : null;
  } catch {
    return null;
  }
}

/** Records (replacing) what `dir` holds; call before writing the files so a killed run leaves them listed. */
export function writeManifest(dir: string, kind: OutputKind, paths: string[], io?: Partial<OutputIo>): void {
  const m: Manifest = { factorgen: 1, kind, paths: [...new Set(paths.map((p) => p.split(path.sep).join('/')))] };
  try {
    withIo(io).writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(m) + '\n');
  } catch (e) {
    throw new UserError(`${dir}: ${describeWriteError(e)}`);
  }
}

/** Every file under `dir` (relative paths with '/'), folders excluded; an empty folder is listed as `name/`. */
export function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      const inner = listFiles(dir, r);
      if (inner.length === 0) out.push(`${r}/`); // an empty folder is something too
      else out.push(...inner);
    } else out.push(r);
  }
  return out;
}

/**
 * What an existing folder without a manifest holds, judged by name (outputs of factorgen versions before manifests):
 * a run (checkpoint/config.json, whose kind says which) or a sample folder (samples.json listing its images).
 */
function inferManifest(dir: string): Manifest | null {
  const ck = path.join(dir, 'checkpoint', 'config.json');
  if (fs.existsSync(ck)) {
    try {
      const kind = (JSON.parse(fs.readFileSync(ck, 'utf8')) as { kind?: string }).kind;
      if (kind === 'tokenizer' || kind === 'generator' || kind === 'teacher') return { factorgen: 1, kind: `${kind} run`, paths: [] };
    } catch {
      return null;
    }
  }
  const sj = path.join(dir, 'samples.json');
  if (fs.existsSync(sj)) {
    try {
      const j = JSON.parse(fs.readFileSync(sj, 'utf8')) as { images?: { file?: string }[] };
      const files = (j.images ?? []).map((r) => r.file).filter((f): f is string => typeof f === 'string');
      return { factorgen: 1, kind: 'samples', paths: ['samples.json', 'grid.png', ...files] };
    } catch {
      return null;
    }
  }
  return null;
}

/** Whether run folder `dir` holds a checkpoint (or the leftover of an interrupted save) that --resume could load. */
function holdsCheckpoint(dir: string): boolean {
  try {
    return fs.readdirSync(dir).some((n) => (n === 'checkpoint' || n.startsWith('checkpoint.')) && fs.existsSync(path.join(dir, n, 'config.json')));
  } catch {
    return false;
  }
}

const short = (items: string[], max = 3) => (items.length > max ? `${items.slice(0, max).join(', ')} and ${items.length - max} more` : items.join(', '));

/**
 * Prepares `dir` for a fresh output of `kind`: a missing or empty folder is fine; a folder holding anything else is
 * refused unless `overwrite`, which removes only what factorgen wrote there (the manifest's files, or for older
 * folders the files known by name) and refuses, removing nothing, when other files are present or the folder holds
 * another kind of output (a sample run never replaces a training run). Call with the folder's lock held.
 */
export function prepareFreshOutput(dir: string, field: string, kind: OutputKind, overwrite: boolean): void {
  const present = listFiles(dir).filter((f) => f !== LOCK_FILE && !f.startsWith('.factorgen-probe-'));
  if (present.length === 0) return;
  const manifest = readManifest(dir) ?? inferManifest(dir);
  // A run of this kind stopped (refused, out of memory, killed) before its first checkpoint left only its manifest
  // and metrics: there is nothing to --resume, so a fresh run replaces those files as --overwrite would.
  const savedNothing = manifest !== null && manifest.kind === kind && isRunKind(kind) && !holdsCheckpoint(dir);
  if (!overwrite && !savedNothing) {
    const what = manifest ? `already holds ${PLURAL_KINDS.has(manifest.kind) ? manifest.kind : `a ${manifest.kind}`}` : `is not empty (${short(present)})`;
    const resume = manifest && isRunKind(manifest.kind) && manifest.kind === kind ? 'pass `resume` to continue it, ' : '';
    throw new UserError(`${what}; ${resume}pass \`overwrite\` to replace it or choose another folder`, { field, value: dir });
  }
  if (manifest && manifest.kind !== kind) {
    throw new UserError(`holds ${PLURAL_KINDS.has(manifest.kind) ? manifest.kind : `a ${manifest.kind}`}, not ${kind}; \`overwrite\` replaces only outputs of the same kind`, { field, value: dir });
  }
  const listed = new Set(manifest?.paths ?? []);
  const ours = (f: string) => f === MANIFEST_FILE || f.startsWith('.factorgen-probe-') || listed.has(f) || (manifest !== null && isRunKind(manifest.kind) && RUN_FILE.test(f));
  const foreign = present.filter((f) => !ours(f));
  if (foreign.length > 0) {
    throw new UserError(`also holds files factorgen did not write (${short(foreign)}); \`overwrite\` removes only factorgen's outputs, so move them or choose another folder`, { field, value: dir });
  }
  const parents = new Set<string>();
  for (const f of present) {
    try {
      fs.unlinkSync(path.join(dir, f));
    } catch (e) {
      throw new UserError(`could not remove ${f} (${describeWriteError(e)})`, { field, value: dir });
    }
    for (let p = path.posix.dirname(f); p !== '.'; p = path.posix.dirname(p)) parents.add(p);
  }
  // Folders that held our files, deepest first; a folder that still holds something is kept.
  for (const p of [...parents].sort((a, b) => b.length - a.length)) {
    try {
      fs.rmdirSync(path.join(dir, p));
    } catch {
      // not empty
    }
  }
}

// ---- run checkpoints ----------------------------------------------------------------------------------

/**
 * The training run folder that `p` (a file or folder path) is, or lies inside of, when it is one: a folder holding
 * `checkpoint/` with optimizer state or a run manifest. null otherwise.
 */
export function enclosingRun(p: string): string | null {
  for (let d = path.resolve(p); ; d = path.dirname(d)) {
    const m = readManifest(d);
    if ((m && isRunKind(m.kind)) || isTrainingCheckpoint(path.join(d, 'checkpoint'))) return d;
    if (path.dirname(d) === d) return null;
  }
}

/**
 * Refuses a path where writing would replace or change a training run's checkpoint (its folder or anything inside it):
 * only the run itself writes there (export would drop its optimizer state, and a later --resume would restart AdamW).
 */
export function refuseRunCheckpoint(p: string, field: string): void {
  const abs = path.resolve(p);
  const run = enclosingRun(abs);
  if (!run) return;
  const ck = path.join(run, 'checkpoint');
  // The run as the user would write it: absolute when it was given so, else relative to the working directory.
  const shown = path.isAbsolute(p) ? run : path.relative(process.cwd(), run) || '.';
  const inside = abs === run || abs === ck || abs.startsWith(ck + path.sep) || path.basename(abs).startsWith('checkpoint.');
  if (inside) throw new UserError(`inside the training run ${shown}, whose checkpoint only that run writes; choose another folder`, { field, value: p });
  if (abs === path.join(run, 'metrics.jsonl')) throw new UserError(`the metrics log of the training run ${shown}, which only that run writes; choose another file`, { field, value: p });
}

/** Whether checkpoint folder `dir` holds training state (optimizer.safetensors, or optimizer.bin in format 1): then it belongs to a run. */
export function isTrainingCheckpoint(dir: string): boolean {
  return fs.existsSync(path.join(dir, OPTIMIZER_FILE)) || fs.existsSync(path.join(dir, 'optimizer.bin'));
}

/**
 * Opens output folder `dir` for a fresh output of `kind` written by `command`: refuses a run's checkpoint, takes the
 * lock (creating the folder, checking it can be written), then prepareFreshOutput. Returns the held lock.
 */
export function openOutputDir(dir: string, field: string, kind: OutputKind, command: string, opts: { overwrite?: boolean; io?: Partial<OutputIo> } = {}): OutputLock {
  refuseRunCheckpoint(dir, field);
  const lock = lockOutputDir(dir, field, command, opts.io);
  try {
    prepareFreshOutput(dir, field, kind, opts.overwrite ?? false);
  } catch (e) {
    lock.release();
    throw e;
  }
  return lock;
}
