import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCK_FILE, lockOutputDir, MANIFEST_FILE, prepareFreshOutput, writeManifest } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { thrownInCliWords } from '../support/cliWords';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-lock-'));
let n = 0;
const fresh = () => {
  const d = path.join(work, `d${n++}`);
  fs.mkdirSync(d);
  return d;
};
const writeLock = (dir: string, info: object) => fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(info));

describe('stale locks are told from live ones, and every refusal says how to clear the lock', () => {
  it('takes over a lock whose pid is alive but is another process (pid reused after kill -9: pid 1 in a container)', () => {
    const dir = fresh();
    // pid 1 is alive (init), but it did not start at the recorded time.
    writeLock(dir, { pid: 1, host: os.hostname(), command: 'generator train', started: '2026-01-01T00:00:00.000Z', procStart: 'other-boot/123' });
    const lock = lockOutputDir(dir, 'out', 'sample');
    expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('takes over an older lock (no start time) held by a live pid that is not a node process', () => {
    const dir = fresh();
    // A live process that is not node (a sleep) holds the recorded pid, as after a kill -9 and pid reuse.
    const sleeper = spawn('sleep', ['30']);
    try {
      writeLock(dir, { pid: sleeper.pid, host: os.hostname(), command: 'generator train', started: '2026-01-01T00:00:00.000Z' });
      lockOutputDir(dir, 'out', 'sample').release();
    } finally {
      sleeper.kill();
    }
  });

  it('a lock from another host counts as held, and the refusal says which file to remove if that run is gone', () => {
    const dir = fresh();
    writeLock(dir, { pid: 4242, host: 'other-machine', command: 'tokenizer train', started: '2026-01-01T00:00:00.000Z' });
    expect(thrownInCliWords(() => lockOutputDir(dir, 'out', 'sample'))).toBe(`--out ${dir}: in use by "factorgen tokenizer train" (pid 4242 on other-machine, started 2026-01-01T00:00:00.000Z); wait for it to finish or choose another folder; if that process is gone, remove ${path.join(dir, LOCK_FILE)}`);
  });

  it('a live lock of this host with a matching start time stays held', () => {
    const dir = fresh();
    const lock = lockOutputDir(dir, 'out', 'generator train');
    const info = JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')) as { procStart?: string };
    expect(info.procStart).toMatch(/^[0-9a-f-]+\/\d+$/);
    lock.release();
  });
});

describe('a run folder with no checkpoint does not demand --resume', () => {
  it('a fresh run replaces what a run stopped before its first checkpoint left (manifest, metrics.jsonl)', () => {
    const dir = fresh();
    writeManifest(dir, 'generator run', ['metrics.jsonl']);
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), '');
    prepareFreshOutput(dir, 'out', 'generator run', false);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('with a checkpoint it still asks for --resume or --overwrite, and other files are never removed', () => {
    const dir = fresh();
    writeManifest(dir, 'generator run', ['metrics.jsonl']);
    fs.mkdirSync(path.join(dir, 'checkpoint'));
    fs.writeFileSync(path.join(dir, 'checkpoint', 'config.json'), '{}');
    expect(thrownInCliWords(() => prepareFreshOutput(dir, 'out', 'generator run', false))).toBe(`--out ${dir}: already holds a generator run; pass --resume to continue it, pass --overwrite to replace it or choose another folder`);
    const other = fresh();
    writeManifest(other, 'generator run', ['metrics.jsonl']);
    fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
    expect(() => prepareFreshOutput(other, 'out', 'generator run', false)).toThrow(/also holds files factorgen did not write \(notes\.txt\)/);
    expect(fs.readdirSync(other).sort()).toEqual([MANIFEST_FILE, 'notes.txt']);
  });
});
