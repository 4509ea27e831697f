import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readTokenFile } from '@factorgen/io';

const root = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-cli-'));

/** Runs the CLI; returns exit code, stdout and stderr. */
function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), ...args], { cwd: work, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('the CLI pipeline on a tiny model', () => {
  it('trains a tokenizer, encodes, trains a generator, samples a grid, decodes a token file', async () => {
    const tiny = ['--steps', '3', '--batch', '4', '--log-every', '1', '--backend', 'wasm', '--seed', '7'];
    let r = cli('tokenizer', 'train', '--out', 'tok', '--base-channels', '8', '--codebook-size', '16', '--latent-channels', '8', ...tiny);
    expect(r.code, r.err).toBe(0);
    expect(r.err.split('\n')[0]).toBe('backend: wasm (wasm simd=true)');
    const trained = JSON.parse(r.out);
    expect(trained.steps).toBe(3);
    expect(trained.usage).toHaveLength(2);
    expect(fs.readFileSync(path.join(work, 'tok/metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);

    r = cli('tokenizer', 'encode', '--tokenizer', 'tok', '--out', 'train.tokens', '--limit', '24', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    const set = readTokenFile(path.join(work, 'train.tokens'));
    expect(set.header).toMatchObject({ gridH: 7, gridW: 7, subCodebookSizes: [16, 16], count: 24 });
    expect(set.header.classNames).toHaveLength(10);

    r = cli('generator', 'train', '--tokens', 'train.tokens', '--val', 'train.tokens', '--out', 'gen', '--width', '32', '--depth', '1', '--heads', '2', '--val-every', '0', ...tiny);
    expect(r.code, r.err).toBe(0);
    const g = JSON.parse(r.out);
    expect(g.valLoss).toBeGreaterThan(0);
    expect(g.last.acc0).toBeGreaterThanOrEqual(0);

    r = cli('sample', '--generator', 'gen', '--out', 'samples', '--classes', '7,bag', '--per-class', '3', '--batch', '4', '--seed', '1', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    expect(fs.readdirSync(path.join(work, 'samples')).sort()).toEqual(['.factorgen.json', '7-sneaker', '8-bag', 'grid.png', 'samples.json', 'samples.tokens']);
    expect(fs.readdirSync(path.join(work, 'samples/7-sneaker')).sort()).toEqual(['0000.png', '0001.png', '0002.png']);
    const meta = await sharp(path.join(work, 'samples/8-bag/0002.png')).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([28, 28, 1]);
    const json = JSON.parse(fs.readFileSync(path.join(work, 'samples/samples.json'), 'utf8'));
    expect(json.images).toHaveLength(6);
    expect(json.settings).toMatchObject({ cfgScale: 2, seed: '1', perClass: 3 });

    // Same seed again, without the KV cache: the same images, byte for byte.
    r = cli('sample', '--generator', 'gen', '--out', 'samples-nocache', '--classes', '7,bag', '--per-class', '3', '--batch', '4', '--seed', '1', '--no-cache', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    for (const f of ['7-sneaker/0000.png', '8-bag/0002.png']) {
      expect(fs.readFileSync(path.join(work, 'samples-nocache', f)).equals(fs.readFileSync(path.join(work, 'samples', f)))).toBe(true);
    }

    // The sampled tokens as a token file: decoding it gives the sample images again.
    const sampled = readTokenFile(path.join(work, 'samples/samples.tokens'));
    expect(Array.from(sampled.labels)).toEqual([7, 7, 7, 8, 8, 8]);
    r = cli('tokenizer', 'decode', '--tokens', 'samples/samples.tokens', '--out', 'redecoded', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    for (const f of ['7-sneaker/0000.png', '8-bag/0002.png']) {
      expect(fs.readFileSync(path.join(work, 'redecoded', f)).equals(fs.readFileSync(path.join(work, 'samples', f)))).toBe(true);
    }

    r = cli('tokenizer', 'decode', '--tokens', 'train.tokens', '--out', 'decoded', '--limit', '5', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
    const decodedDirs = fs.readdirSync(path.join(work, 'decoded')).filter((d) => d !== '.factorgen.json');
    const decodedPngs = decodedDirs.flatMap((d) => fs.readdirSync(path.join(work, 'decoded', d)));
    expect(decodedPngs).toHaveLength(5);
  }, 300_000);

  it('prints help and rejects bad flags with one line and a non-zero exit', () => {
    const help = cli('--help');
    expect(help.code).toBe(0);
    for (const c of ['info', 'tokenizer', 'generator', 'sample', 'eval', 'compare', 'export']) expect(help.out).toContain(c);
    const bad = cli('tokenizer', 'train', '--out', 'x', '--steps', 'abc');
    expect(bad.code).toBe(1);
    expect(bad.err.trim()).toBe("error: option '--steps <n>' argument 'abc' is invalid. Expected a positive integer.");
    const info = cli('info', '--backend', 'cpu');
    expect(info.code).toBe(0);
    expect(info.out).toContain('backend: cpu');
  });
});
