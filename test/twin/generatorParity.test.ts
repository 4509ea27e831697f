/**
 * The PyTorch twin (python/factorgen_twin) against factorgen on the same weights and inputs: teacher-forced logits of
 * every sub-token, the loss and its gradient for every parameter, and the cached CFG decoding trace; and the
 * checkpoint round trip factorgen -> twin -> factorgen.
 *
 * Tolerance: both sides compute in float32 but sum in different orders (tfjs cpu kernels vs PyTorch's BLAS, fused
 * wqkv vs three matMuls), so each dot product of length n carries a relative error of order n * 2^-24 of the sum of
 * |terms|; through 6 blocks of width 192..576 that compounds to ~1e-6 of the values' scale. The bounds below are 1e-5
 * of each quantity's largest magnitude plus 1e-7 (logits, loss, CFG trace) and 2e-5 of the largest gradient of each
 * tensor (at least 1e-3). Measured on pretrained/generator (192 x 6, 3-layer head; cpu backend vs PyTorch 1.13 CPU):
 * logits 1.05e-5 at scale 11.4, CFG-3 trace 2.1e-5 at 21.1, loss 1.9e-6, worst gradient 1.5e-7 at 0.053
 * (gpt/block1/attn/k); the test prints them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadCheckpoint, saveCheckpoint } from '@factorgen/io';
import { variableGradsByName, Rng } from '@factorgen/nn';
import { type LoadedTensor } from '@factorgen/formats';
import { forcedStepLogits, generatorFromCheckpoint, generatorLogits, generatorLoss, makeGeneratorConfig, seqLen, type Generator, type GeneratorConfig } from '@factorgen/generator';
import { trainGenerator } from '@factorgen/pipelines';
import { tokenDtype, type TokenSet } from '@factorgen/io';
import { describeWith, systemPython } from '../support/components';

const repoRoot = path.resolve(__dirname, '../..');
let work: string;

type Parity = {
  logits: number[]; logitScale: number[]; argmaxFlips: number[]; loss: number; gradWorst: { name: string; maxAbs: number; scale: number };
  gradCount: number; steps: number[]; stepScale: number[];
};

/** Runs `python -m factorgen_twin.<args>` on Debian's interpreter, one thread. */
function twin(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(systemPython, ['-m', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'python'), OMP_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' },
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** B fixed token grids (from Rng('twin-parity')) and labels covering a class and the null class. */
function fixedInputs(gen: Generator, B: number): { tokens: Int32Array; labels: Int32Array } {
  const rng = new Rng('twin-parity');
  const T = seqLen(gen.cfg);
  const Vs = gen.cfg.subCodebookSizes;
  const tokens = new Int32Array(B * T * Vs.length);
  for (let i = 0; i < tokens.length; i++) tokens[i] = rng.int(Vs[i % Vs.length]);
  const labels = Int32Array.from({ length: B }, (_, b) => (b === B - 1 ? gen.cfg.numClasses : (3 * b + 1) % gen.cfg.numClasses));
  return { tokens, labels };
}

/** Writes factorgen's numbers for `ckDir` into a dump folder (see python/factorgen_twin/parity.py) and runs the twin on it. */
async function parity(ckDir: string, name: string, B: number, cfgScale: number): Promise<Parity> {
  const ck = await loadCheckpoint(ckDir, 'generator');
  const { gen } = generatorFromCheckpoint(ck, ckDir);
  const T = seqLen(gen.cfg);
  const K = gen.cfg.subCodebookSizes.length;
  const { tokens, labels } = fixedInputs(gen, B);
  const tokT = tf.tensor3d(tokens, [B, T, K], 'int32');
  const out = new Map<string, tf.Tensor>();
  out.set('tokens', tokT);
  out.set('labels', tf.tensor1d(labels, 'int32'));
  generatorLogits(gen, tokT, labels, { training: false }).forEach((l, k) => out.set(`logits${k}`, l));
  const { value, grads } = variableGradsByName(() => generatorLoss(gen, tokT, labels, { training: false }).loss, gen.params.vars);
  out.set('loss', tf.reshape(value, [1]));
  for (const [n, g] of Object.entries(grads)) out.set(`grad/${n}`, g);
  const trace = await forcedStepLogits(gen, tokens, labels, { cfgScale, useCache: true });
  for (let k = 0; k < K; k++) out.set(`step${k}`, tf.tensor3d(trace.flatMap((row) => [...row[k]]), [T, B, gen.cfg.subCodebookSizes[k]]));
  const dump = path.join(work, `${name}-dump`);
  await saveCheckpoint(dump, { kind: 'twin-parity', config: { cfgScale }, step: 0, params: out });
  tf.dispose([...out.values()]);
  gen.params.dispose();
  const r = twin(['factorgen_twin.parity', 'generator', '--checkpoint', ckDir, '--dump', dump]);
  expect(r.stderr + `(exit ${r.code})`).toBe('(exit 0)');
  const p = JSON.parse(r.stdout) as Parity;
  console.log(`twin parity ${name}: ${JSON.stringify(p)}`);
  return p;
}

/** The bounds of the file comment. */
function expectWithin(p: Parity, params: number): void {
  const tol = (scale: number) => 1e-5 * scale + 1e-7;
  p.logits.forEach((d, k) => expect(d, `logits${k}`).toBeLessThanOrEqual(tol(p.logitScale[k])));
  p.steps.forEach((d, k) => expect(d, `step${k}`).toBeLessThanOrEqual(tol(p.stepScale[k])));
  expect(p.loss).toBeLessThanOrEqual(1e-5);
  expect(p.gradCount).toBe(params);
  expect(p.gradWorst.maxAbs, p.gradWorst.name).toBeLessThanOrEqual(2e-5 * Math.max(p.gradWorst.scale, 1e-3));
}

const sameTensors = (a: Map<string, LoadedTensor>, b: Map<string, LoadedTensor>) => {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [n, t] of a) {
    expect(b.get(n)!.shape, n).toEqual(t.shape);
    expect(Buffer.from(b.get(n)!.data.buffer).equals(Buffer.from(t.data.buffer)), n).toBe(true);
  }
};

describeWith('torch', 'generator twin (PyTorch) vs factorgen', () => {
  let tinyDir: string;
  let parallelDir: string;
  /** Trains a tiny generator `steps` steps on random tokens into work/<name>; returns its checkpoint folder. */
  const trainTiny = async (name: string, over: Partial<GeneratorConfig>, steps: number): Promise<string> => {
    const cfg = makeGeneratorConfig({
      gridH: 3, gridW: 4, subCodebookSizes: [7, 5, 6], numClasses: 4, width: 24, depth: 2, heads: 2, mlpHidden: 40, headMode: 'ar',
      headLayers: 2, headWidth: 16, headHeads: 2, headMlpHidden: 20, dropout: 0.1, rope: '1d', classDropout: 0.3, ...over,
    });
    const n = 10;
    const K = cfg.subCodebookSizes.length;
    const rng = new Rng(`twin-${name}-tokens`);
    const tokens = Int32Array.from({ length: n * seqLen(cfg) * K }, (_, i) => rng.int(cfg.subCodebookSizes[i % K]));
    const set: TokenSet = {
      header: {
        format: 1, tokenizerId: 'twin-test', tokenizerPath: 'none', configHash: 'none', gridH: cfg.gridH, gridW: cfg.gridW,
        subCodebookSizes: cfg.subCodebookSizes, classNames: ['a', 'b', 'c', 'd'], count: n, dtype: tokenDtype(cfg.subCodebookSizes), source: 'synthetic',
      },
      tokens,
      labels: Int32Array.from({ length: n }, (_, i) => i % 4),
    };
    await trainGenerator({
      out: path.join(work, name), resume: false, config: cfg, tokens: set, tokensPath: 'synthetic.tokens',
      train: {
        steps, batch: 4, lr: 3e-2, warmup: 1, minLrRatio: 0.1, clip: 1, adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 },
        seed: 'twin', checkpointEvery: 100, logEvery: 100, valEvery: 0, valLimit: 8, ema: 0.5,
      },
    });
    return path.join(work, name, 'checkpoint');
  };
  beforeAll(async () => {
    await initBackend('cpu');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-twin-'));
    // What pretrained/generator (no classRope field: identity) does not cover: K = 3, 1-D RoPE, head/inProj (headWidth <
    // width), two head layers, EMA weights, optimizer state, classRope 'identity' written out; and the parallel head with
    // 2-D RoPE on a non-square grid and the class token's rotary embedding 'zero' (cos = sin = 0).
    tinyDir = await trainTiny('tiny', { classRope: 'identity' }, 5);
    parallelDir = await trainTiny('parallel', { headMode: 'parallel', rope: '2d', gridH: 2, gridW: 3, heads: 1, classRope: 'zero' }, 3);
  });
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('pretrained/generator: logits of every sub-token, loss, all 93 gradients and the cached CFG trace match factorgen', async () => {
    const p = await parity(path.join(repoRoot, 'pretrained/generator'), 'pretrained', 3, 3);
    expectWithin(p, 93);
  });

  it('a tiny generator trained 5 steps (K = 3, 1-D RoPE, head/inProj, EMA weights) matches factorgen likewise', async () => {
    const p = await parity(tinyDir, 'tiny', 2, 2);
    expectWithin(p, 53);
  });

  it("a tiny parallel-head generator (2-D RoPE on a 2x3 grid, classRope 'zero') matches factorgen likewise", async () => {
    expect((await loadCheckpoint(parallelDir, 'generator')).config.classRope).toBe('zero');
    const p = await parity(parallelDir, 'parallel', 2, 1.5);
    expectWithin(p, 30);
  });

  it('round trip: factorgen checkpoint -> twin modules -> saved -> factorgen loads identical tensors, EMA and AdamW moments included', async () => {
    const a = await loadCheckpoint(tinyDir, 'generator');
    expect([...a.tensors.keys()].filter((n) => n.startsWith('ema/')).length).toBe(53);
    expect(a.optimizer?.step).toBe(5);
    for (const fmt of ['1', '2']) {
      const out = path.join(work, `roundtrip-${fmt}`);
      const r = twin(['factorgen_twin.parity', 'roundtrip', '--checkpoint', tinyDir, '--out', out, '--format', fmt]);
      expect(r.stderr + `(exit ${r.code})`).toBe('(exit 0)');
      expect(fs.readdirSync(out).sort()).toEqual(fmt === '2' ? ['config.json', 'model.safetensors', 'optimizer.safetensors'] : ['config.json', 'optimizer.bin', 'weights.bin']);
      const b = await loadCheckpoint(out, 'generator');
      expect(b.format).toBe(Number(fmt));
      sameTensors(a.tensors, b.tensors);
      sameTensors(a.optimizer!.m, b.optimizer!.m);
      sameTensors(a.optimizer!.v, b.optimizer!.v);
      expect([b.kind, b.step, b.optimizer!.step, JSON.stringify(b.config), JSON.stringify(b.extra)]).toEqual([a.kind, a.step, 5, JSON.stringify(a.config), JSON.stringify(a.extra)]);
    }
  });
});
