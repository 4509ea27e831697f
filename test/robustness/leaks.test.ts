/**
 * No tensor leaks over repeated sampling: tf.memory().numTensors is the same after the 2nd and the 8th call of `sample`
 * (with and without the KV cache, with guidance), and sampleToFolder / encode / decode give back every tensor they make.
 * (The training steps are checked in resume.test.ts.)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { Rng } from '@factorgen/nn';
import { loadTokenizer } from '@factorgen/pipelines';
import { encodeImages, decodeToImages } from '@factorgen/tokenizer';
import { readTokenFile } from '@factorgen/io';
import { sample } from '@factorgen/generator';
import { loadGenerator, sampleToFolder } from '@factorgen/pipelines';
import { evaluateLoss } from '@factorgen/pipelines';
import { makePipeline, tinyDataset } from './fixtures';

let root: string;
let tokDir: string;
let genDir: string;
let tokensFile: string;
beforeAll(async () => {
  await initBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-leaks-'));
  ({ tokDir, tokensFile, genDir } = await makePipeline(root, { tokens: 'train.tokens' }));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Tensor counts after each of `n` calls. */
async function countsOver(n: number, f: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    await f(i);
    out.push(tf.memory().numTensors);
  }
  return out;
}

describe('sampling loops', () => {
  it('sample(): flat tensor count over 8 calls, cached and uncached, with guidance, top-k and top-p', async () => {
    const g = await loadGenerator(genDir);
    const labels = Int32Array.from([0, 1, 2]);
    for (const useCache of [true, false]) {
      const counts = await countsOver(8, (i) =>
        sample(g.gen, labels, { cfgScale: 2, temperature: 1, topK: 5, topP: 0.9, useCache, rng: new Rng(`leak${i}`) }),
      );
      expect(counts[7], `useCache ${useCache}: ${counts.join(',')}`).toBe(counts[1]);
      expect(new Set(counts).size).toBe(1);
    }
    g.gen.params.dispose();
  });

  it('sampleToFolder(), encode, decode and the validation loss give back every tensor they make', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const r = await sampleToFolder({
        generator: genDir, out: path.join(root, `samples${i}`), perClass: 2, batch: 4, seed: String(i), cfgScale: 1.5, temperature: 1,
        topK: 0, topP: 1, useCache: true,
      });
      expect(r.images).toBe(6);
      expect(tf.memory().numTensors).toBe(before);
    }
    const t = await loadTokenizer(tokDir);
    const data = tinyDataset();
    const g = await loadGenerator(genDir);
    const set = readTokenFile(tokensFile);
    const counts = await countsOver(6, async () => {
      await decodeToImages(t.tok, await encodeImages(t.tok, data.images, data.n, 5), data.n, 5);
      await evaluateLoss(g.gen, set, 5, 12);
    });
    expect(counts[5]).toBe(counts[1]);
    expect(new Set(counts).size).toBe(1);
    t.tok.params.dispose();
    g.gen.params.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
