import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { LEGACY_CHECKPOINT_FORMAT, MODEL_FILE } from '@factorgen/formats';
import { loadCheckpoint, saveCheckpoint } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { generatorFromCheckpoint } from '@factorgen/generator';
import { tokenizerFromCheckpoint } from '@factorgen/tokenizer';

const root = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-bounds-'));

/** A copy of a shipped checkpoint (format 2: config.json + model.safetensors) with its model config changed by `edit`. */
function edited(kind: 'generator' | 'tokenizer', edit: (cfg: Record<string, unknown>) => void): string {
  const dir = path.join(work, `${kind}-${Math.random().toString(36).slice(2)}`);
  fs.mkdirSync(dir);
  for (const f of ['config.json', MODEL_FILE]) fs.copyFileSync(path.join(root, 'pretrained', kind, f), path.join(dir, f));
  const j = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { config: Record<string, unknown> };
  edit(j.config);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(j));
  return dir;
}

/** The shipped checkpoint rewritten in the legacy format 1 (config.json with the index + weights.bin). */
async function legacyCopy(kind: 'generator' | 'tokenizer'): Promise<string> {
  const ck = await loadCheckpoint(path.join(root, 'pretrained', kind), kind);
  const dir = path.join(work, `${kind}-legacy-${Math.random().toString(36).slice(2)}`);
  const params = new Map([...ck.tensors].map(([k, t]) => [k, tf.tensor(t.data, t.shape, t.dtype)] as const));
  await saveCheckpoint(dir, { kind, config: ck.config, step: ck.step, params, ...(ck.extra ? { extra: ck.extra } : {}), format: LEGACY_CHECKPOINT_FORMAT });
  tf.dispose([...params.values()]);
  return dir;
}

describe('a config.json is checked against its weights and sane limits before anything is allocated', () => {
  it('refuses a generator config edited to width 65536, depth 64 at once, naming the file (was: 6.4 GB in 60 s)', async () => {
    await tf.setBackend('cpu');
    const dir = edited('generator', (c) => Object.assign(c, { width: 65536, depth: 64, headWidth: 128 }));
    const ck = await loadCheckpoint(dir, 'generator');
    const before = tf.memory().numBytes;
    expect(() => generatorFromCheckpoint(ck, dir)).toThrow(new UserError(`${dir}/config.json: generator config: width 65536 is over the limit 16384`));
    expect(tf.memory().numBytes).toBe(before);
  });

  it('refuses a generator config within the limits that describes another model (width 8192, depth 64), allocating none of what the weights lack', async () => {
    await tf.setBackend('cpu');
    const dir = edited('generator', (c) => Object.assign(c, { width: 8192, depth: 64, heads: 64 }));
    const ck = await loadCheckpoint(dir, 'generator');
    const before = tf.memory().numBytes;
    // Every parameter whose name or shape weights.bin lacks is listed, none allocated (gpt/inProj alone would be 256 MB; the shipped generator is 192 x 6 with a 3-layer head, 1024 codes per sub-codebook).
    expect(() => generatorFromCheckpoint(ck, dir)).toThrow(
      new UserError(
        `${dir}: checkpoint does not match the model: missing gpt/block6/norm1, gpt/block6/attn/q, gpt/block6/attn/k and 520 more; ` +
          'gpt/tok0: checkpoint [1024,96] vs model [1024,4096]; gpt/tok1: checkpoint [1024,96] vs model [1024,4096]; gpt/inProj: checkpoint [192,192] vs model [8192,8192] and 56 more',
      ),
    );
    expect(tf.memory().numBytes).toBe(before); // nothing left allocated
  });

  it('refuses a tokenizer config past its limits or its weights', async () => {
    await tf.setBackend('cpu');
    let dir = edited('tokenizer', (c) => Object.assign(c, { imageSize: 1 << 20 }));
    let ck = await loadCheckpoint(dir, 'tokenizer');
    expect(() => tokenizerFromCheckpoint(ck, dir)).toThrow(new UserError(`${dir}/config.json: imageSize 1048576 is over the limit 4096`));
    dir = edited('tokenizer', (c) => Object.assign(c, { baseChannels: 2048, normGroups: 8 }));
    ck = await loadCheckpoint(dir, 'tokenizer');
    const before = tf.memory().numBytes;
    expect(() => tokenizerFromCheckpoint(ck, dir)).toThrow(
      new UserError(`${dir}: checkpoint does not match the model: encoder/conv_in/w: checkpoint [3,3,1,32] vs model [3,3,1,2048]; encoder/conv_in/b: checkpoint [32] vs model [2048]; encoder/down0/res0/norm1/gamma: checkpoint [32] vs model [2048] and 158 more`),
    );
    expect(tf.memory().numBytes).toBe(before);
  });

  it('sizes a weights file before reading it: a larger (sparse, 64 GiB) file is refused from its size, a FIFO is not opened', async () => {
    await tf.setBackend('cpu');
    const current = edited('generator', () => {});
    const m = path.join(current, MODEL_FILE);
    fs.truncateSync(m, 64 * 2 ** 30);
    await expect(loadCheckpoint(current, 'generator')).rejects.toThrow(new UserError(`${m}: ${64 * 2 ** 30} bytes, more than the ${2 ** 31 - 1} a weights file can have`));
    const dir = await legacyCopy('generator');
    const w = path.join(dir, 'weights.bin');
    fs.truncateSync(w, 64 * 2 ** 30); // sparse: no disk used, and reading it would need 64 GiB of memory
    await expect(loadCheckpoint(dir, 'generator')).rejects.toThrow(new UserError(`${w}: wrong size: expected 20579072 bytes, found ${64 * 2 ** 30}`));
    fs.unlinkSync(w);
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [w]);
    await expect(loadCheckpoint(dir, 'generator')).rejects.toThrow(new UserError(`${w}: not a regular file`));
  });
});

describe('checkpoint config.json and dataset images are regular files', () => {
  it('refuses a FIFO as config.json and as an image, without waiting on it', async () => {
    const { execFileSync } = await import('node:child_process');
    const dir = path.join(work, 'fifo-ck');
    fs.mkdirSync(dir);
    execFileSync('mkfifo', [path.join(dir, 'config.json')]);
    await expect(loadCheckpoint(dir, 'generator')).rejects.toThrow(new UserError(`${dir}/config.json: is a FIFO (named pipe), expected a regular file of known size`));
    const missing = path.join(work, 'empty-ck');
    fs.mkdirSync(missing);
    await expect(loadCheckpoint(missing, 'generator')).rejects.toThrow(new UserError(`${missing}/config.json: missing (not a factorgen checkpoint folder)`));
    const { listImageFolder } = await import('@factorgen/io');
    const data = path.join(work, 'fifo-data');
    for (const c of ['a', 'b']) {
      fs.mkdirSync(path.join(data, c), { recursive: true });
      fs.writeFileSync(path.join(data, c, '0.png'), '');
    }
    execFileSync('mkfifo', [path.join(data, 'b', '1.png')]);
    expect(() => listImageFolder(data)).toThrow(new UserError(`${path.join(data, 'b', '1.png')}: is a FIFO (named pipe), expected an image file`));
  });
});

describe('NaN weights in a tokenizer', () => {
  it('are refused at load, naming the tensor (was: encode wrote all-zero ids, reconstruct reported a PSNR)', async () => {
    await tf.setBackend('cpu');
    // Format 2: the tensor's bytes found through the safetensors header (8-byte length, JSON, data).
    const dir = edited('tokenizer', () => {});
    const file = path.join(dir, MODEL_FILE);
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape: number[]; data_offsets: [number, number] }>;
    const name = Object.keys(header).find((x) => x !== '__metadata__' && !x.startsWith('disc/') && !x.startsWith('state/') && !x.startsWith('align/'))!;
    const [begin, end] = header[name]!.data_offsets;
    bytes.writeFloatLE(NaN, 8 + n + begin);
    bytes.writeFloatLE(Infinity, 8 + n + begin + 4);
    fs.writeFileSync(file, bytes);
    const ck = await loadCheckpoint(dir, 'tokenizer');
    expect(() => tokenizerFromCheckpoint(ck, dir)).toThrow(
      new UserError(`${dir}: ${MODEL_FILE}: ${name} holds 2 NaN or infinite values (of ${(end - begin) / 4}); the checkpoint is broken (a diverged run, or a damaged file)`),
    );
    // Format 1 names weights.bin.
    const legacy = await legacyCopy('tokenizer');
    const j = JSON.parse(fs.readFileSync(path.join(legacy, 'config.json'), 'utf8')) as { weights: { entries: { name: string; offset: number; length: number }[] } };
    const e = j.weights.entries.find((x) => x.name === name)!;
    const fd = fs.openSync(path.join(legacy, 'weights.bin'), 'r+');
    const nan = Buffer.alloc(4);
    nan.writeFloatLE(NaN, 0);
    fs.writeSync(fd, nan, 0, 4, e.offset);
    fs.closeSync(fd);
    const ckLegacy = await loadCheckpoint(legacy, 'tokenizer');
    expect(() => tokenizerFromCheckpoint(ckLegacy, legacy)).toThrow(
      new UserError(`${legacy}: weights.bin: ${name} holds 1 NaN or infinite value (of ${e.length / 4}); the checkpoint is broken (a diverged run, or a damaged file)`),
    );
  });
});
