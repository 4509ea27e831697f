/**
 * Tiny models, data and CLI helpers shared by the robustness tests (shapes kept minimal: the CI machine has 2 loaded cores).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { expect } from 'vitest';
import { defaultAdamW } from '@factorgen/nn';
import { type ImageDataset } from '@factorgen/formats';
import { quantizerDefaults, type TokenizerConfig } from '@factorgen/tokenizer';
import { trainTokenizer, type TokenizerTrainConfig } from '@factorgen/pipelines';
import { loadTokenizer } from '@factorgen/pipelines';
import { encodeImages } from '@factorgen/tokenizer';
import { readTokenFile, writeTokenFile, tokenDtype, type TokenSet } from '@factorgen/io';
import { configHash, gridSize } from '@factorgen/tokenizer';
import { makeGeneratorConfig, type GeneratorConfig } from '@factorgen/generator';
import { trainGenerator, type GeneratorTrainConfig } from '@factorgen/pipelines';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const cliPath = path.join(repoRoot, 'apps/cli/bin/factorgen.mjs');

/** 8x8 grey images, grid 4x4, two sub-codebooks of 16 codes: the smallest model that exercises every part. */
export function tinyTokenizerConfig(overrides: Partial<TokenizerConfig> = {}): TokenizerConfig {
  return {
    version: 2,
    factorize: 'projection',
    branchBlocks: 1,
    alignTargets: [],
    imageSize: 8,
    channels: 1,
    baseChannels: 8,
    channelMult: [1, 2],
    blocksPerLevel: 1,
    attention: false,
    normGroups: 4,
    latentChannels: 8,
    quantizer: quantizerDefaults('fq', [{ size: 16, dim: 4 }, { size: 16, dim: 4 }]),
    perceptualWeight: 0,
    ...overrides,
  };
}

export function tinyTokenizerTrain(overrides: Partial<TokenizerTrainConfig> = {}): TokenizerTrainConfig {
  return {
    steps: 4, batch: 4, lr: 2e-3, warmup: 1, minLrRatio: 0.1, clip: 1, adamw: { ...defaultAdamW, weightDecay: 0.01 }, seed: 'robust',
    flip: true, checkpointEvery: 1000, logEvery: 1, usageWindow: 3, restartDeadEvery: 0, ...overrides,
  };
}

/** Deterministic synthetic images: `n` 8x8x1 images in 3 classes (bars at a class-dependent position + noise). */
export function tinyDataset(n = 12, size = 8): ImageDataset {
  const images = new Uint8Array(n * size * size);
  const labels = new Int32Array(n);
  let s = 12345;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 255;
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) images[(i * size + y) * size + x] = (x % 3 === c ? 200 : 30) + (rand() & 31);
    }
  }
  return { name: 'synthetic', images, n, height: size, width: size, channels: 1, labels, classNames: ['bar zero', 'bar one', 'bar two'] };
}

export function tinyGeneratorConfig(overrides: Partial<GeneratorConfig> = {}): GeneratorConfig {
  return makeGeneratorConfig({
    gridH: 4, gridW: 4, subCodebookSizes: [16, 16], numClasses: 3, width: 16, depth: 1, heads: 2, mlpHidden: 24, headMode: 'ar',
    headLayers: 1, headWidth: 16, headHeads: 2, headMlpHidden: 24, dropout: 0.1, rope: '2d', classDropout: 0.2, ...overrides,
  });
}

export function tinyGeneratorTrain(overrides: Partial<GeneratorTrainConfig> = {}): GeneratorTrainConfig {
  return {
    steps: 4, batch: 4, lr: 3e-3, warmup: 1, minLrRatio: 0.1, clip: 1, adamw: { ...defaultAdamW, weightDecay: 0.01 }, seed: 'robust',
    checkpointEvery: 1000, logEvery: 1, valEvery: 0, valLimit: 8, ...overrides,
  };
}

/** Trains a tiny tokenizer for `steps` steps into `out` (a run folder; the checkpoint is `out/checkpoint`). */
export async function makeTokenizer(out: string, seed = 'robust', steps = 2): Promise<string> {
  await trainTokenizer({ out, resume: false, config: tinyTokenizerConfig(), data: tinyDataset(), train: tinyTokenizerTrain({ steps, seed }) });
  return path.join(out, 'checkpoint');
}

/** Encodes the tiny dataset with the tokenizer in `tokDir` and writes a token file, as `tokenizer encode` does. */
export async function makeTokenFile(tokDir: string, file: string): Promise<TokenSet> {
  const { tok, id, dir } = await loadTokenizer(tokDir);
  const data = tinyDataset();
  const tokens = await encodeImages(tok, data.images, data.n, 8);
  const sizes = tok.cfg.quantizer.subCodebooks.map((s) => s.size);
  const g = gridSize(tok.cfg);
  const set: TokenSet = {
    header: {
      format: 1, tokenizerId: id, tokenizerPath: dir, configHash: configHash(tok.cfg), gridH: g, gridW: g, subCodebookSizes: sizes,
      classNames: data.classNames, count: data.n, dtype: tokenDtype(sizes), source: 'synthetic/train',
    },
    tokens,
    labels: data.labels,
  };
  writeTokenFile(file, set);
  tok.params.dispose();
  return set;
}

/** Trains a tiny generator on `tokens` into `out`; returns the checkpoint folder. */
export async function makeGenerator(out: string, tokens: TokenSet, tokensPath: string, steps = 2): Promise<string> {
  await trainGenerator({ out, resume: false, config: tinyGeneratorConfig(), tokens, tokensPath, train: tinyGeneratorTrain({ steps }) });
  return path.join(out, 'checkpoint');
}

/** The folders and file of makePipeline's chain. */
export type TinyPipeline = { tokRun: string; tokDir: string; tokensFile: string; genRun: string; genDir: string };

/**
 * The chain most CLI tests start from, under `root`: a tiny tokenizer run (2 steps, seed `seed`, default 'robust'),
 * a token file it encoded from tinyDataset, and a tiny generator run (2 steps) trained on that file as read back
 * from disk. Names default to tok/, t.tokens and gen/. Needs an initialised backend.
 */
export async function makePipeline(
  root: string,
  opts: { tokenizer?: string; tokens?: string; generator?: string; seed?: string } = {},
): Promise<TinyPipeline> {
  const tokRun = path.join(root, opts.tokenizer ?? 'tok');
  const tokDir = await makeTokenizer(tokRun, opts.seed);
  const tokensFile = path.join(root, opts.tokens ?? 't.tokens');
  await makeTokenFile(tokDir, tokensFile);
  const genRun = path.join(root, opts.generator ?? 'gen');
  const genDir = await makeGenerator(genRun, readTokenFile(tokensFile), tokensFile);
  return { tokRun, tokDir, tokensFile, genRun, genDir };
}

/** Writes an ImageFolder tree root/<class>/<i>.png of solid 8x8 grey images. */
export async function makeImageFolder(root: string, classes: Record<string, number>, size = 8): Promise<void> {
  for (const [cls, count] of Object.entries(classes)) {
    fs.mkdirSync(path.join(root, cls), { recursive: true });
    for (let i = 0; i < count; i++) {
      const v = (i * 37 + cls.length * 50) % 256;
      await sharp(Buffer.alloc(size * size, v), { raw: { width: size, height: size, channels: 1 } })
        .png()
        .toFile(path.join(root, cls, `${i}.png`));
    }
  }
}

export type CliResult = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** Starts `factorgen ...args` with cwd = the repo root. */
export function startCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [cliPath, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
}

/** Runs `factorgen ...args` to the end. */
export function runCliProcess(args: string[]): Promise<CliResult> {
  return collectCli(startCli(args));
}

/** The exit code, signal and whole stdout/stderr of a started CLI process, once it has closed. */
function collectCli(child: ReturnType<typeof startCli>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * stderr without the "backend: ..." line every command prints first and the class map a folder dataset prints
 * ("classes of DIR: 0=a, 1=b"): what is left must be the single error line.
 */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.length > 0 && !l.startsWith('backend: ') && !l.startsWith('classes of '));
}

/** A failed run: exit `code`, `line` as the only error line on stderr, nothing on stdout. */
export function expectOneLine(r: CliResult, code: number, line: string): void {
  expect(r.code, r.stderr).toBe(code);
  expect(errorLines(r.stderr)).toEqual([line]);
  expect(r.stdout).toBe('');
}

/** CRC-32 (PNG chunk checksums), for hand-made PNG headers. */
export function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A valid PNG whose IHDR claims width x height (its pixel data is for 1x1): sharp rejects it on the header alone. */
export async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const png = await sharp(Buffer.from([128]), { raw: { width: 1, height: 1, channels: 1 } }).png().toBuffer();
  const out = Buffer.from(png);
  // 8-byte signature, then the IHDR chunk: length(4) "IHDR"(4) width(4) height(4) ...(5) crc(4)
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

/** Starts a long run, waits until metrics.jsonl shows `minSteps` steps, sends `signal`, and collects the result. */
export function interruptCli(args: string[], run: string, signal: NodeJS.Signals, minSteps = 2): Promise<CliResult> {
  const child = startCli(args);
  const result = collectCli(child);
  const metrics = path.join(run, 'metrics.jsonl');
  const poll = setInterval(() => {
    const lines = fs.existsSync(metrics) ? fs.readFileSync(metrics, 'utf8').split('\n').filter(Boolean).length : 0;
    if (lines >= minSteps) {
      clearInterval(poll);
      child.kill(signal);
    }
  }, 50);
  return result.finally(() => clearInterval(poll));
}
