import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignParams, type LoadedTensor } from '@factorgen/formats';
import { hasCheckpoint, loadCheckpoint, readAdamState, restoreAdamState, saveCheckpoint, type CheckpointData, type CheckpointIo } from '@factorgen/io';
import { readSafetensors, safetensorsBytes, type SafetensorsTensor } from '@factorgen/formats';
import { UserError } from '@factorgen/tfjs-ext';
import { adamwStep, defaultAdamW, disposeAdamState, initAdamState, type AdamState } from '@factorgen/nn';
import { Rng } from '@factorgen/nn';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-ckpt-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let dirCounter = 0;
const freshDir = () => path.join(root, `case${dirCounter++}`, 'checkpoint');

/** A variable that owns its data (the initial tensor is disposed, so tf.memory() stays exact). */
let varCounter = 0;
function variable(make: () => tf.Tensor, trainable = true): tf.Variable {
  const t = tf.tidy(make);
  const v = tf.variable(t, trainable, `v${varCounter++}`);
  t.dispose();
  return v;
}

/** The raw bytes as numbers, so -0, NaN payloads and subnormals compare exactly. */
const bytesOf = (a: Float32Array | Int32Array) => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

/** Two small params with awkward float values (-0, subnormal, max, NaN) and an int32 tensor. */
function makeParams(seed: number): Map<string, tf.Variable> {
  const w = new Float32Array([-0, 1e-45, 3.4028234663852886e38, NaN, 0.1 * seed, -2.5, 1 / 3, 7]);
  return new Map<string, tf.Variable>([
    ['enc/w', variable(() => tf.tensor(w, [2, 4]))],
    ['enc/b', variable(() => tf.tensor([seed, -seed, 0.5], [3]))],
  ]);
}

function disposeAll(m: Map<string, tf.Tensor>) {
  for (const t of m.values()) t.dispose();
}

async function errorOf(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

function siblingsOf(dir: string): string[] {
  return fs.readdirSync(path.dirname(dir)).sort();
}

describe('saveCheckpoint / loadCheckpoint', () => {
  it.each([
    [2, ['config.json', 'model.safetensors', 'optimizer.safetensors']],
    [1, ['config.json', 'optimizer.bin', 'weights.bin']],
  ] as const)('format %i: round-trips params, optimizer, rng and extra bit-exactly, and AdamW continues identically', async (format, files) => {
    const before = tf.memory().numTensors;
    const dir = freshDir();
    const params = makeParams(1);
    params.set('steps', variable(() => tf.tensor([1, -2, 2147483647], [3], 'int32'), false));
    const opt = initAdamState();
    const trainable = new Map([...params].filter(([n]) => n !== 'steps'));
    // Two real AdamW steps (NaN-free copy of the params so the moments are meaningful).
    const clean = new Map([...trainable].map(([n, v]) => [n, variable(() => tf.where(tf.isNaN(v), tf.zerosLike(v), v))] as const));
    for (let s = 0; s < 2; s++) {
      const grads = tf.tidy(() => Object.fromEntries([...clean].map(([n, v]) => [n, tf.sin(tf.add(v, s))])));
      adamwStep(clean, grads, opt, { ...defaultAdamW, weightDecay: 0.1 }, 1e-2);
      tf.dispose(Object.values(grads));
    }
    const rng = new Rng('seed');
    rng.normal(); // leaves a spare Box-Muller value in the state
    const ck: CheckpointData = {
      kind: 'tokenizer',
      config: { channels: [8, 16], name: 'tiny' },
      step: 2,
      params: new Map([...clean, ['steps', params.get('steps') as tf.Variable]]),
      optimizer: opt,
      rng: rng.state(),
      extra: { bestLoss: 0.125 },
      format,
    };
    // Also store the NaN/-0/subnormal values under another name to check bit-exactness.
    ck.params.set('raw/w', params.get('enc/w') as tf.Variable);
    await saveCheckpoint(dir, ck);
    expect(fs.readdirSync(dir).sort()).toEqual(files);

    const loaded = await loadCheckpoint(dir, 'tokenizer');
    expect(loaded.format).toBe(format);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).format).toBe(format);
    expect(loaded.kind).toBe('tokenizer');
    expect(loaded.step).toBe(2);
    expect(loaded.config).toEqual({ channels: [8, 16], name: 'tiny' });
    expect(loaded.extra).toEqual({ bestLoss: 0.125 });
    expect(loaded.from).toBe(dir);
    expect([...loaded.tensors.keys()]).toEqual(['enc/w', 'enc/b', 'steps', 'raw/w']);
    for (const [name, t] of ck.params) {
      const l = loaded.tensors.get(name) as LoadedTensor;
      expect(l.shape).toEqual(t.shape);
      expect(l.dtype).toBe(t.dtype);
      expect(bytesOf(l.data)).toEqual(bytesOf(t.dataSync() as Float32Array));
    }
    // The RNG continues with the same numbers.
    const restoredRng = Rng.fromState(loaded.rng!);
    expect([restoredRng.normal(), restoredRng.next()]).toEqual([rng.normal(), rng.next()]);

    // Optimizer: restore into fresh variables, take one more step on both, compare bit-exactly.
    expect(loaded.optimizer?.step).toBe(2);
    const opt2: AdamState = restoreAdamState(loaded.optimizer!);
    const vars2 = new Map([...clean].map(([n, v]) => [n, variable(() => tf.zerosLike(v))] as const));
    assignParams(vars2, new Map([...loaded.tensors].filter(([n]) => clean.has(n))), dir);
    for (const [p, st] of [[clean, opt], [vars2, opt2]] as const) {
      const grads = tf.tidy(() => Object.fromEntries([...p].map(([n, v]) => [n, tf.cos(v)])));
      adamwStep(p, grads, st, { ...defaultAdamW, weightDecay: 0.1 }, 1e-2);
      tf.dispose(Object.values(grads));
    }
    for (const n of clean.keys()) {
      expect(bytesOf(vars2.get(n)!.dataSync() as Float32Array)).toEqual(bytesOf(clean.get(n)!.dataSync() as Float32Array));
    }
    const snap = await readAdamState(opt2);
    expect(snap.step).toBe(3);

    disposeAdamState(opt);
    disposeAdamState(opt2);
    disposeAll(params);
    disposeAll(clean);
    disposeAll(vars2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('replaces an existing checkpoint and leaves no .tmp/.old folders; cleans leftovers of dead processes', async () => {
    const dir = freshDir();
    const p1 = makeParams(1);
    await saveCheckpoint(dir, { kind: 'generator', config: {}, step: 1, params: p1 });
    // Leftovers of a crashed save by a process that no longer exists.
    const deadPid = 2 ** 22 + 12345; // above Linux's pid_max default range
    fs.mkdirSync(`${dir}.tmp-${deadPid}-0`);
    fs.writeFileSync(`${dir}.tmp-${deadPid}-0/weights.bin`, 'partial');
    fs.mkdirSync(`${dir}.old-${deadPid}-3`);
    const p2 = makeParams(2);
    await saveCheckpoint(`${dir}/`, { kind: 'generator', config: {}, step: 5, params: p2 }); // trailing slash too
    expect(siblingsOf(dir)).toEqual(['checkpoint']);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.step).toBe(5);
    expect(Array.from(loaded.tensors.get('enc/b')!.data)).toEqual([2, -2, 0.5]);
    disposeAll(p1);
    disposeAll(p2);
  });

  it('a failed write (ENOSPC) keeps the previous checkpoint loadable and removes the temp folder', async () => {
    const dir = freshDir();
    const p1 = makeParams(1);
    await saveCheckpoint(dir, { kind: 'generator', config: {}, step: 1, params: p1 });
    const failingIo: Partial<CheckpointIo> = {
      async writeFile(file) {
        fs.writeFileSync(file, 'half');
        throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC', syscall: 'write' });
      },
    };
    const err = await errorOf(saveCheckpoint(dir, { kind: 'generator', config: {}, step: 2, params: p1 }, failingIo));
    expect(err.message).toBe(`${dir}: could not save checkpoint (ENOSPC: no space left on device)`);
    expect(siblingsOf(dir)).toEqual(['checkpoint']);
    expect((await loadCheckpoint(dir)).step).toBe(1);
    disposeAll(p1);
  });

  it('a failed final rename puts the previous checkpoint back', async () => {
    const dir = freshDir();
    const p1 = makeParams(1);
    await saveCheckpoint(dir, { kind: 'generator', config: {}, step: 1, params: p1 });
    const failingIo: Partial<CheckpointIo> = {
      async rename(from, to) {
        if (from.includes('.tmp-')) throw Object.assign(new Error(`EIO: i/o error, rename '${from}'`), { code: 'EIO' });
        fs.renameSync(from, to);
      },
    };
    const err = await errorOf(saveCheckpoint(dir, { kind: 'generator', config: {}, step: 2, params: p1 }, failingIo));
    expect(err.message).toBe(`${dir}: could not save checkpoint (EIO: i/o error)`);
    expect(siblingsOf(dir)).toEqual(['checkpoint']);
    expect((await loadCheckpoint(dir)).step).toBe(1);
    disposeAll(p1);
  });

  it('a save whose parent is a file fails with one line', async () => {
    const file = path.join(root, `file${dirCounter++}`);
    fs.writeFileSync(file, 'not a folder');
    const p1 = makeParams(1);
    const err = await errorOf(saveCheckpoint(path.join(file, 'ck'), { kind: 'generator', config: {}, step: 1, params: p1 }));
    expect(err.message).toBe(`${path.join(file, 'ck')}: could not save checkpoint (${file} is a file, not a folder)`);
    disposeAll(p1);
  });

  it('refuses to replace a folder that is not a checkpoint', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    const p1 = makeParams(1);
    const err = await errorOf(saveCheckpoint(dir, { kind: 'generator', config: {}, step: 1, params: p1 }));
    expect(err.message).toBe(`${dir}: exists and is not a checkpoint folder (refusing to replace it)`);
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    disposeAll(p1);
  });

  it('loads a leftover .old when a save was interrupted between its renames', async () => {
    const dir = freshDir();
    const p1 = makeParams(1);
    await saveCheckpoint(dir, { kind: 'generator', config: {}, step: 7, params: p1 });
    const old = `${dir}.old-${2 ** 22 + 7}-0`;
    fs.renameSync(dir, old); // the state right after "rename dir -> .old" when the process died
    expect(hasCheckpoint(dir)).toBe(true);
    const loaded = await loadCheckpoint(dir, 'generator');
    expect(loaded.step).toBe(7);
    expect(loaded.from).toBe(old);
    // The next save puts a checkpoint back at dir and removes the .old.
    await saveCheckpoint(dir, { kind: 'generator', config: {}, step: 8, params: p1 });
    expect(siblingsOf(dir)).toEqual(['checkpoint']);
    expect((await loadCheckpoint(dir)).from).toBe(dir);
    disposeAll(p1);
  });
});

describe('loadCheckpoint errors', () => {
  async function saved(format: 1 | 2 = 1): Promise<string> {
    const dir = freshDir();
    const p = makeParams(1);
    await saveCheckpoint(dir, { kind: 'generator', config: { a: 1 }, step: 3, params: p, format });
    disposeAll(p);
    return dir;
  }
  const editConfig = (dir: string, f: (j: Record<string, any>) => void) => {
    const file = path.join(dir, 'config.json');
    const j = JSON.parse(fs.readFileSync(file, 'utf8'));
    f(j);
    fs.writeFileSync(file, JSON.stringify(j));
  };

  it('missing folder, missing and invalid config.json', async () => {
    const dir = freshDir();
    expect(hasCheckpoint(dir)).toBe(false);
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${dir}: no such checkpoint folder`);
    fs.mkdirSync(dir, { recursive: true });
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${dir}/config.json: missing (not a factorgen checkpoint folder)`);
    fs.writeFileSync(path.join(dir, 'config.json'), '{"format": 1,');
    expect((await errorOf(loadCheckpoint(dir))).message).toMatch(new RegExp(`^${dir}/config.json: invalid JSON \\(.+\\)$`));
  });

  it('newer format and wrong kind', async () => {
    const dir = await saved();
    expect((await errorOf(loadCheckpoint(dir, 'tokenizer'))).message).toBe(
      `${dir}: expected a tokenizer checkpoint, found a generator checkpoint`,
    );
    editConfig(dir, (j) => (j.format = 3));
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(
      `${dir}/config.json: was written by a newer factorgen (format 3, this version reads 1 and 2)`,
    );
  });

  it('format 2: a missing, truncated or hostile model.safetensors is one line naming it', async () => {
    const dir = await saved(2);
    const file = path.join(dir, 'model.safetensors');
    const full = new Uint8Array(fs.readFileSync(file));
    const n = full[0] + full[1] * 256; // the header's length (small)
    expect(full.byteLength).toBe(8 + n + 44);
    fs.writeFileSync(file, full.subarray(0, full.byteLength - 4));
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(
      `${file}: tensor "enc/b" has data_offsets [32,44] out of range (the data is 40 bytes)`,
    );
    fs.writeFileSync(file, full.subarray(0, 100));
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${file}: header of ${n} bytes is longer than the file (100 bytes)`);
    fs.rmSync(file);
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${file}: missing`);
  });

  it('format 2: optimizer.safetensors with a bad step, a stray tensor or a shape unlike its weight is one line', async () => {
    const dir = freshDir();
    const p = makeParams(1);
    const opt = initAdamState();
    for (const [n, v] of p) {
      opt.m.set(n, tf.onesLike(v));
      opt.v.set(n, tf.onesLike(v));
    }
    opt.step = 4;
    await saveCheckpoint(dir, { kind: 'generator', config: {}, step: 4, params: p, optimizer: opt });
    const file = path.join(dir, 'optimizer.safetensors');
    const good = readSafetensors(new Uint8Array(fs.readFileSync(file)), 'x');
    expect(good.metadata).toEqual({ step: '4' });
    expect([...good.tensors.keys()]).toEqual(['m/enc/w', 'm/enc/b', 'v/enc/w', 'v/enc/b']);
    const rewrite = (tensors: Map<string, SafetensorsTensor>, metadata: Record<string, string>) => fs.writeFileSync(file, safetensorsBytes(tensors, metadata));
    rewrite(good.tensors, { step: '4.5' });
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${file}: has no valid "step" in __metadata__ (a decimal count, e.g. {"step": "123"})`);
    rewrite(new Map([...good.tensors, ['adam/x', good.tensors.get('m/enc/b')!]]), { step: '4' });
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${file}: tensor "adam/x" is neither m/<parameter> nor v/<parameter>`);
    rewrite(new Map([...good.tensors, ['m/enc/b', { shape: [1, 3], dtype: 'float32', data: new Float32Array(3) }]]), { step: '4' });
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${file}: tensor "m/enc/b" is float32 [1,3] but the weight is float32 [3]`);
    rewrite(new Map([...good.tensors].filter(([n]) => n !== 'v/enc/b')), { step: '4' });
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${file}: m/ and v/ tensors name different parameters`);
    rewrite(good.tensors, { step: '4' });
    expect((await loadCheckpoint(dir)).optimizer?.step).toBe(4);
    disposeAdamState(opt);
    disposeAll(p);
  });

  it('truncated or oversized weights.bin', async () => {
    const dir = await saved();
    const bin = path.join(dir, 'weights.bin');
    const full = new Uint8Array(fs.readFileSync(bin));
    expect(full.byteLength).toBe(44); // 8 + 3 floats
    fs.writeFileSync(bin, full.subarray(0, 40));
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${bin}: truncated: expected 44 bytes, found 40`);
    const longer = new Uint8Array(48);
    longer.set(full);
    fs.writeFileSync(bin, longer);
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${bin}: wrong size: expected 44 bytes, found 48`);
    fs.rmSync(bin);
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(`${bin}: missing`);
  });

  it('entries out of range or inconsistent with their shape', async () => {
    const dir = await saved();
    editConfig(dir, (j) => (j.weights.entries[1].offset = 36));
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(
      `${dir}/config.json: weights entry "enc/b" (bytes 36..48) is out of range (file has 44 bytes)`,
    );
    editConfig(dir, (j) => {
      j.weights.entries[1].offset = 32;
      j.weights.entries[1].shape = [4];
    });
    expect((await errorOf(loadCheckpoint(dir))).message).toBe(
      `${dir}/config.json: weights entry "enc/b" has length 12 but shape [4] needs 16 bytes`,
    );
  });
});

describe('assignParams', () => {
  it('reports missing, unexpected and mismatched shapes in one line, and assigns nothing', () => {
    const vars = new Map<string, tf.Variable>();
    for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) vars.set(n, variable(() => tf.zeros([2])));
    vars.set('w', variable(() => tf.zeros([4, 4])));
    const t = (shape: number[]): LoadedTensor => ({ shape, dtype: 'float32', data: new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(1) });
    const loaded = new Map([['a', t([2])], ['w', t([3, 4])], ['extra/x', t([1])]]);
    expect(() => assignParams(vars, loaded, 'runs/tok/checkpoint')).toThrow(
      new UserError('runs/tok/checkpoint: checkpoint does not match the model: missing b, c, d and 2 more; unexpected extra/x; w: checkpoint [3,4] vs model [4,4]'),
    );
    expect(Array.from(vars.get('a')!.dataSync())).toEqual([0, 0]); // all-or-nothing
    const ok = new Map([...vars].map(([n, v]) => [n, t(v.shape)] as const));
    const before = tf.memory().numTensors;
    assignParams(vars, ok, 'x');
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(vars.get('w')!.dataSync())).toEqual(new Array(16).fill(1));
    disposeAll(vars);
  });
});
