import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { Rng } from '@factorgen/nn';
import {
  createGenerator,
  forcedStepLogits,
  generatorLogits,
  makeGeneratorConfig,
  sample,
  type Generator,
  type GeneratorConfig,
} from '@factorgen/generator';

const tiny = (over: Partial<GeneratorConfig>): GeneratorConfig =>
  makeGeneratorConfig({
    gridH: 3,
    gridW: 3,
    subCodebookSizes: [5, 7],
    numClasses: 3,
    width: 16,
    depth: 2,
    heads: 2,
    mlpHidden: 24,
    headMode: 'ar',
    headLayers: 2,
    headWidth: 8,
    headHeads: 2,
    headMlpHidden: 12,
    dropout: 0.1,
    classDropout: 0.1,
    rope: '2d',
    ...over,
  });

/** Runs f on a generator and always disposes it (tf variable names are global: a leaked one breaks later tests). */
async function withGen(gen: Generator, f: (gen: Generator) => Promise<void>): Promise<void> {
  try {
    await f(gen);
  } finally {
    gen.params.dispose();
  }
}

/** Fresh models have zero output layers (uniform logits); perturb every parameter so logits depend on everything. */
function randomized(cfg: GeneratorConfig, seed: string): Generator {
  const gen = createGenerator(cfg, seed);
  const rng = new Rng(`${seed}/perturb`);
  for (const v of gen.params.vars.values()) {
    const noise = Float32Array.from({ length: v.size }, () => rng.normal() * 0.3);
    tf.tidy(() => v.assign(tf.add(v, tf.tensor(noise, v.shape))));
  }
  return gen;
}

const T = 9;
const B = 3;

function randomTokens(cfg: GeneratorConfig, rng: Rng): Int32Array {
  const K = cfg.subCodebookSizes.length;
  const out = new Int32Array(B * T * K);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(cfg.subCodebookSizes[i % K]);
  return out;
}

/** Teacher-forced logits for the given labels, as trace[t][k]: [B * V_k]. */
async function teacherForced(gen: Generator, tokens: Int32Array, labels: Int32Array): Promise<Float32Array[][]> {
  const K = gen.cfg.subCodebookSizes.length;
  const logits = tf.tidy(() => generatorLogits(gen, tf.tensor3d(tokens, [B, T, K], 'int32'), labels, { training: false }));
  const per = (await Promise.all(logits.map((l) => l.array()))) as number[][][][];
  tf.dispose(logits);
  return Array.from({ length: T }, (_, t) =>
    per.map((l) => Float32Array.from(l.flatMap((rows) => rows[t]))),
  );
}

function maxAbsDiff(a: Float32Array[][], b: Float32Array[][]): number {
  let m = 0;
  a.forEach((row, t) =>
    row.forEach((x, k) => {
      expect(x.length).toBe(b[t][k].length);
      for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - b[t][k][i]));
    }),
  );
  return m;
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe.each([
  ['ar', '2d'],
  ['ar', '1d'],
  ['parallel', '2d'],
] as const)('decoding with head %s, rope %s', (headMode, rope) => {
  const cfg = tiny({ headMode, rope });
  const labels = Int32Array.from([0, 2, 1]);

  it('cached logits equal a full recompute and the teacher-forced forward at every step', async () => {
    await withGen(randomized(cfg, `cache-${headMode}-${rope}`), async (gen) => {
      const tokens = randomTokens(cfg, new Rng('tokens'));
      const cached = await forcedStepLogits(gen, tokens, labels, { cfgScale: 1, useCache: true });
      const full = await forcedStepLogits(gen, tokens, labels, { cfgScale: 1, useCache: false });
      const tf1 = await teacherForced(gen, tokens, labels);
      expect(cached.length).toBe(T);
      expect(cached[0].length).toBe(2);
      expect(cached[0][1].length).toBe(B * 7);
      expect(maxAbsDiff(cached, full)).toBeLessThan(1e-5);
      expect(maxAbsDiff(cached, tf1)).toBeLessThan(1e-5);
      // the logits really vary with position, sub-codebook and earlier tokens (so the comparison can fail)
      expect(Math.abs(cached[4][0][0] - cached[5][0][0])).toBeGreaterThan(1e-3);
    });
  });

  it('guidance combines conditional and null-class logits; scale 1 is exactly the conditional', async () => {
    await withGen(randomized(cfg, `cfg-${headMode}-${rope}`), async (gen) => {
      const tokens = randomTokens(cfg, new Rng('tokens2'));
      const cond = await teacherForced(gen, tokens, labels);
      const uncond = await teacherForced(gen, tokens, new Int32Array(B).fill(cfg.numClasses));
      const s = 2.5;
      const want = cond.map((row, t) =>
        row.map((c, k) => c.map((v, i) => uncond[t][k][i] + s * (v - uncond[t][k][i]))),
      );
      expect(maxAbsDiff(await forcedStepLogits(gen, tokens, labels, { cfgScale: s, useCache: true }), want)).toBeLessThan(5e-5);
      expect(maxAbsDiff(await forcedStepLogits(gen, tokens, labels, { cfgScale: s, useCache: false }), want)).toBeLessThan(5e-5);
      // scale 1 is the conditional distribution (no null-class rows run; cfgCombine(., ., 1) is an exact copy)
      expect(maxAbsDiff(await forcedStepLogits(gen, tokens, labels, { cfgScale: 1, useCache: true }), cond)).toBeLessThan(1e-5);
      expect(maxAbsDiff(await forcedStepLogits(gen, tokens, labels, { cfgScale: 0, useCache: true }), uncond)).toBeLessThan(1e-5);
      // guidance changes the logits (null class differs from the classes)
      expect(maxAbsDiff(want, cond)).toBeGreaterThan(1e-3);
    });
  });

  it('cached and uncached sampling draw the same tokens, and sampling leaks no tensors', async () => {
    await withGen(randomized(cfg, `sample-${headMode}-${rope}`), async (gen) => {
      const opts = { cfgScale: 3, temperature: 1, topK: 4, topP: 0.9 };
      await sample(gen, labels, { ...opts, rng: new Rng('warm'), useCache: true }); // first-use allocations, if any
      const before = tf.memory().numTensors;
      const a = await sample(gen, labels, { ...opts, rng: new Rng('s'), useCache: true });
      const b = await sample(gen, labels, { ...opts, rng: new Rng('s'), useCache: false });
      for (let i = 0; i < 3; i++) await sample(gen, labels, { ...opts, rng: new Rng(`loop${i}`), useCache: i % 2 === 0 });
      expect(tf.memory().numTensors).toBe(before);
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(a.length).toBe(B * T * 2);
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeLessThan(cfg.subCodebookSizes[i % 2]);
      // seeded: same rng state -> same sample; another seed -> (almost surely) another sample
      expect(Array.from(await sample(gen, labels, { ...opts, rng: new Rng('s'), useCache: true }))).toEqual(Array.from(a));
      expect(Array.from(await sample(gen, labels, { ...opts, rng: new Rng('other'), useCache: true }))).not.toEqual(Array.from(a));
    });
  });
});

describe('sample input checks', () => {
  it('rejects labels outside [0, numClasses]', async () => {
    await withGen(createGenerator(tiny({}), 'x'), async (gen) => {
      const opts = { cfgScale: 1, temperature: 1, topK: 0, topP: 1, rng: new Rng('r'), useCache: true };
      await expect(sample(gen, Int32Array.from([4]), opts)).rejects.toThrow(/label 4 outside \[0, 3\]/);
      // the null class itself is allowed (unconditional samples)
      expect((await sample(gen, Int32Array.from([3]), opts)).length).toBe(T * 2);
    });
  });
});

describe('sample progress', () => {
  it('reports every decoded position, in order, and the callback does not change the tokens', async () => {
    for (const headMode of ['ar', 'parallel'] as const) {
      await withGen(randomized(tiny({ headMode }), `progress-${headMode}`), async (gen) => {
        const opts = { cfgScale: 2, temperature: 1, topK: 0, topP: 1, useCache: true };
        const calls: [number, number][] = [];
        const a = await sample(gen, Int32Array.from([0, 1]), { ...opts, rng: new Rng('p'), onProgress: (done, total) => void calls.push([done, total]) });
        expect(calls).toEqual(Array.from({ length: T }, (_, t) => [t + 1, T]));
        expect(Array.from(await sample(gen, Int32Array.from([0, 1]), { ...opts, rng: new Rng('p') }))).toEqual(Array.from(a));
      });
    }
  });
});
