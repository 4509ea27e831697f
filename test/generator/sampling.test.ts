/**
 * Sampling numerics: temperature 0 is greedy, every finite temperature and guidance scale is safe (no overflow to a
 * constant image), NaN/Inf are refused; guidance on a generator that never saw the null class needs --force; images are
 * written as each batch finishes.
 */
import { inCliWords } from '../support/cliWords';
import { inFlagWords } from '@factorgen/cli/ui/errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { Rng } from '@factorgen/nn';
import { UserError } from '@factorgen/tfjs-ext';
import { cfgCombine, chooseToken, sample } from '@factorgen/generator';
import { createGenerator } from '@factorgen/generator';
import { sampleToFolder } from '@factorgen/pipelines';
import type { Generator } from '@factorgen/generator';
import { readTokenFile } from '@factorgen/io';
import { errorLines, makeGenerator, makeTokenFile, makeTokenizer, runCliProcess, tinyGeneratorConfig, tinyGeneratorTrain } from '../robustness/fixtures';
import { trainGenerator } from '@factorgen/pipelines';

const f32 = (xs: number[]) => Float32Array.from(xs);
let root: string;
let gen: Generator;
beforeAll(async () => {
  await initBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-sampling-'));
  gen = createGenerator(tinyGeneratorConfig({ dropout: 0 }), 'sampling-test');
  // Random weights everywhere (the output layers start at zero, which would tie every logit).
  let k = 0;
  for (const v of gen.params.vars.values()) {
    const r = tf.randomNormal(v.shape, 0, 0.5, 'float32', k++);
    v.assign(r);
    r.dispose();
  }
});
afterAll(() => {
  gen.params.dispose();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('extreme but finite settings', () => {
  it('a tiny temperature picks the most likely token (it used to overflow and fall through to the last index)', () => {
    const rng = new Rng('tiny-t');
    for (const t of [1e-3, 1e-40, 1e-300, 5e-324]) {
      for (let i = 0; i < 20; i++) expect(chooseToken(f32([1, 3, 2, -5]), { temperature: t, topK: 0, topP: 1 }, rng), `T=${t}`).toBe(1);
      expect(chooseToken(f32([1, 3, 2, -5]), { temperature: t, topK: 2, topP: 0.5 }, rng)).toBe(1);
    }
    // a huge temperature is uniform over what top-k keeps
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(chooseToken(f32([1, 3, 2, -5]), { temperature: 1e300, topK: 3, topP: 1 }, rng));
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });

  it('guidance scales stay finite in float64 (1e39 would overflow float32), and beyond float64 are clamped', () => {
    const g = cfgCombine(f32([0.5, 2, 1]), f32([0.4, 1, 1.5]), 1e39);
    expect(Array.from(g).every(Number.isFinite)).toBe(true);
    expect(chooseToken(g, { temperature: 1, topK: 0, topP: 1 }, new Rng('cfg'))).toBe(1); // argmax of cond - uncond
    const h = cfgCombine(f32([0, 3, -3]), f32([0, 1, 1]), 1e308); // 2e308 and -4e308 do not fit float64
    expect(Array.from(h)).toEqual([0, Number.MAX_VALUE, -Number.MAX_VALUE]);
    expect(chooseToken(h, { temperature: 1, topK: 0, topP: 1 }, new Rng('cfg2'))).toBe(1);
  });

  it('sample(): temperature 1e-40 is temperature 0 (greedy), and so is a huge guidance scale at temperature 1', async () => {
    const labels = Int32Array.from([0, 1, 2]);
    const run = (cfgScale: number, temperature: number) => sample(gen, labels, { cfgScale, temperature, topK: 0, topP: 1, useCache: true, rng: new Rng('s') });
    const greedy = await run(2, 0);
    expect(await run(2, 1e-40)).toEqual(greedy);
    const hugeGreedy = await run(1e39, 0);
    expect(await run(1e39, 1)).toEqual(hugeGreedy);
    // not a constant image: the tokens vary (the old overflow chose the last index everywhere)
    expect(new Set(hugeGreedy).size).toBeGreaterThan(1);
    expect(new Set(await run(2, 1e-40)).size).toBeGreaterThan(1);
  });

  it('NaN and Infinity are refused; a NaN logit is an error, not a silent last index', async () => {
    const labels = Int32Array.from([0]);
    for (const bad of [{ cfgScale: NaN, temperature: 1 }, { cfgScale: 2, temperature: Infinity }, { cfgScale: Infinity, temperature: 1 }]) {
      await expect(sample(gen, labels, { ...bad, topK: 0, topP: 1, useCache: true, rng: new Rng('x') })).rejects.toThrow(/must be finite/);
    }
    expect(() => chooseToken(f32([0, NaN, 1]), { temperature: 1, topK: 0, topP: 1 }, new Rng('n'))).toThrow(UserError);
    expect(() => chooseToken(f32([0, NaN, 1]), { temperature: 0, topK: 0, topP: 1 }, new Rng('n'))).toThrow(
      'sample: the generator produced a NaN logit (its weights hold NaN or Infinity)',
    );
  });
});

describe('sampleToFolder', () => {
  let run0: string; // trained with class dropout 0
  let run: string;
  beforeAll(async () => {
    const tok = await makeTokenizer(path.join(root, 'tok'));
    const tokens = path.join(root, 't.tokens');
    await makeTokenFile(tok, tokens);
    run = path.join(root, 'gen');
    await makeGenerator(run, readTokenFile(tokens), tokens);
    run0 = path.join(root, 'gen0');
    await trainGenerator({ out: run0, resume: false, config: tinyGeneratorConfig({ classDropout: 0 }), tokens: readTokenFile(tokens), tokensPath: tokens, train: tinyGeneratorTrain({ steps: 1 }) });
  }, 120_000);
  const req = (generator: string, out: string) => ({
    generator, out: path.join(root, out), perClass: 2, batch: 2, seed: '0', cfgScale: 2, temperature: 1, topK: 0, topP: 1, useCache: true,
  });

  it('guidance on a generator trained with class dropout 0 is refused without force, and warned about with it', async () => {
    const e = await sampleToFolder({ ...req(run0, 's0'), classes: '0' }).catch((x: unknown) => x);
    expect(inCliWords(e)).toBe(
      '--cfg 2: the generator was trained with --class-dropout 0, so it never saw the null class that guidance contrasts with; use --cfg 1, or pass --force to guide anyway',
    );
    expect(fs.existsSync(path.join(root, 's0'))).toBe(false);
    const warnings: string[] = [];
    const ok = await sampleToFolder({ ...req(run0, 's0'), classes: '0', force: true, warn: (l) => warnings.push(l) });
    expect(ok.images).toBe(2);
    expect(warnings.map(inFlagWords)).toEqual(['warning: --cfg 2: the generator was trained with --class-dropout 0, so it never saw the null class that guidance contrasts with (guiding anyway: --force)']);
    const plain = await sampleToFolder({ ...req(run0, 's1'), classes: '0', cfgScale: 1 });
    expect(plain.images).toBe(2);
  });

  it('writes each batch as it finishes (a kill loses one batch), with progress', async () => {
    const out = path.join(root, 'stream');
    const seen: { done: number; total: number; pngs: number; listed: number }[] = [];
    const countPngs = () =>
      fs.readdirSync(out, { withFileTypes: true }).filter((d) => d.isDirectory()).reduce((n, d) => n + fs.readdirSync(path.join(out, d.name)).length, 0);
    await sampleToFolder({
      ...req(run, 'stream'), perClass: 2, batch: 2,
      onProgress: (done, total) => {
        const listed = (JSON.parse(fs.readFileSync(path.join(out, 'samples.json'), 'utf8')) as { images: unknown[] }).images.length;
        seen.push({ done, total, pngs: countPngs(), listed });
      },
    });
    expect(seen).toEqual([
      { done: 2, total: 6, pngs: 2, listed: 2 },
      { done: 4, total: 6, pngs: 4, listed: 4 },
      { done: 6, total: 6, pngs: 6, listed: 6 },
    ]);
    // and the images are the ones an all-at-once run gives (per-batch decoding changes nothing)
    const json = JSON.parse(fs.readFileSync(path.join(out, 'samples.json'), 'utf8')) as { images: { file: string; batchStart: number }[] };
    expect(json.images.map((r) => [r.file, r.batchStart])).toEqual([
      [path.join('0-bar-zero', '0000.png'), 0], [path.join('0-bar-zero', '0001.png'), 0],
      [path.join('1-bar-one', '0000.png'), 2], [path.join('1-bar-one', '0001.png'), 2],
      [path.join('2-bar-two', '0000.png'), 4], [path.join('2-bar-two', '0001.png'), 4],
    ]);
  });

  it('through the CLI: --temperature 0 is greedy (as 1e-40), progress is shown, guidance on class dropout 0 is one line', async () => {
    const args = (out: string, ...more: string[]) => ['sample', '--generator', run, '--out', path.join(root, out), '--per-class', '1', '--backend', 'wasm', ...more];
    const [zero, tiny, noDropout, inf] = await Promise.all([
      runCliProcess(args('t0', '--temperature', '0')),
      runCliProcess(args('t40', '--temperature', '1e-40')),
      runCliProcess(['sample', '--generator', run0, '--out', path.join(root, 'c0'), '--backend', 'wasm']),
      runCliProcess(args('inf', '--cfg', '1e999')),
    ]);
    expect(zero.code, zero.stderr).toBe(0);
    expect(tiny.code, tiny.stderr).toBe(0);
    for (const f of [path.join('0-bar-zero', '0000.png'), path.join('2-bar-two', '0000.png')]) {
      expect(fs.readFileSync(path.join(root, 't0', f)).equals(fs.readFileSync(path.join(root, 't40', f))), f).toBe(true);
    }
    expect(zero.stderr).toMatch(/^sample 3\/3 100% \| [\d.]+ (image\/s|s\/image) \| (eta|took) \d+s$/m);
    expect(noDropout.code).toBe(2);
    expect(errorLines(noDropout.stderr)).toEqual([
      'factorgen: --cfg 2: the generator was trained with --class-dropout 0, so it never saw the null class that guidance contrasts with; use --cfg 1, or pass --force to guide anyway',
    ]);
    expect(inf.code).toBe(1);
    expect(inf.stderr.trim()).toBe("error: option '--cfg <scale>' argument '1e999' is invalid. Expected a number >= 0.");
  }, 120_000);
});
