/**
 * Exact resume: N steps in one run == N/2 steps, a stop (as SIGINT does it: the loop saves and throws StopRequested),
 * then --resume for the rest, bit for bit (model.safetensors and optimizer.safetensors), on the cpu and wasm backends,
 * from a checkpoint in the current format and from one rewritten in the legacy format 1 (weights.bin, optimizer.bin:
 * what runs made before safetensors hold).
 * Also: the tensor count stays flat over the training steps (no leak per step).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadCheckpoint, type CheckpointData, type CheckpointIo } from '@factorgen/io';
import { type RunDir, type Trainer, type TrainerRequest } from '@factorgen/train';
import { StopRequested } from '@factorgen/cli/ui/signals';
import { UserError } from '@factorgen/tfjs-ext';
import { MODEL_FILE } from '@factorgen/formats';
import * as io from '@factorgen/io';
import * as nn from '@factorgen/nn';
import { trainTokenizer } from '@factorgen/pipelines';
import { trainGenerator } from '@factorgen/pipelines';
import { readTokenFile } from '@factorgen/io';
import { loadTokenizer } from '@factorgen/pipelines';
import { CodeHistogram } from '@factorgen/tokenizer';
import {
  makeTokenFile, makeTokenizer, tinyDataset, tinyGeneratorConfig, tinyGeneratorTrain, tinyTokenizerConfig, tinyTokenizerTrain,
} from './fixtures';
import { inCliWords } from '../support/cliWords';

/**
 * Test hooks: after step `stopAfter` a SIGINT is delivered; step `nanAt` reports a NaN loss; the save of step `failSaveAt`
 * hits a full disk; tensor counts are recorded after every step.
 */
const hook = vi.hoisted(() => ({ stopAfter: -1, nanAt: -1, failSaveAt: -1, tensorsAfterStep: [] as number[] }));

vi.mock('@factorgen/train', async (importOriginal) => {
  const mod = await importOriginal<typeof import('@factorgen/train')>();
  const tfm = await import('@tensorflow/tfjs');
  const { installStopHandler } = await import('@factorgen/cli/ui/signals');
  return {
    ...mod,
    // Every trainer runs through runTrainer: wrap its step, and stop it as the CLI does (its SIGINT handler aborts the run).
    runTrainer: async <T extends object>(req: TrainerRequest, setup: (run: RunDir) => Trainer<T> | Promise<Trainer<T>>) => {
      const stop = installStopHandler();
      try {
        return await mod.runTrainer({ ...req, signal: stop.signal }, async (run) => {
          const t = await setup(run);
          const o = t.loop;
          return {
            ...t,
            loop: {
              ...o,
              step: async (s: number, logged: boolean) => {
                const m = await o.step(s, logged);
                hook.tensorsAfterStep.push(tfm.memory().numTensors);
                // What the signal handler sees from a real SIGINT; the loop then saves and throws StopRequested.
                if (s + 1 === hook.stopAfter) process.emit('SIGINT', 'SIGINT');
                if (s + 1 !== hook.nanAt) return m;
                // A NaN loss computed on the device, as a diverging model gives it
                tfm.dispose(m.loss as import('@tensorflow/tfjs').Scalar);
                return { ...m, loss: tfm.scalar(NaN) };
              },
            },
          };
        });
      } finally {
        stop.dispose();
      }
    },
  };
});
vi.mock('@factorgen/io', async (importOriginal) => {
  const mod = await importOriginal<typeof import('@factorgen/io')>();
  return {
    ...mod,
    saveCheckpoint: (dir: string, ck: CheckpointData, io?: Partial<CheckpointIo>) =>
      mod.saveCheckpoint(
        dir,
        ck,
        ck.step === hook.failSaveAt
          ? {
              writeFile: async () => {
                throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
              },
            }
          : io,
      ),
  };
});

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-resume-'));
  // The stop notice and the "saved checkpoint" line go to stderr; keep the test output clean.
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterAll(() => {
  vi.restoreAllMocks();
  fs.rmSync(root, { recursive: true, force: true });
});

const bytes = (dir: string, file: string) => fs.readFileSync(path.join(dir, 'checkpoint', file));
const stepOf = (dir: string) => (JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint', 'config.json'), 'utf8')) as { step: number }).step;

/**
 * Rewrites the checkpoint of run `run` in the legacy format 1 (config.json with the indexes, weights.bin, optimizer.bin),
 * as a run made before safetensors left it: the same config, step, rng, extra, tensors and moments.
 */
async function rewriteAsLegacy(run: string): Promise<void> {
  const dir = path.join(run, 'checkpoint');
  const ck = await io.loadCheckpoint(dir);
  expect(ck.format).toBe(2);
  const params = new Map([...ck.tensors].map(([n, t]) => [n, tf.tensor(t.data, t.shape, t.dtype)] as const));
  const optimizer = ck.optimizer ? io.restoreAdamState(ck.optimizer) : undefined;
  await io.saveCheckpoint(dir, {
    kind: ck.kind, config: ck.config, step: ck.step, params, ...(optimizer ? { optimizer } : {}),
    ...(ck.rng ? { rng: ck.rng } : {}), ...(ck.extra ? { extra: ck.extra } : {}), format: 1,
  });
  for (const t of params.values()) t.dispose();
  if (optimizer) nn.disposeAdamState(optimizer);
  expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'optimizer.bin', 'weights.bin']);
}

/**
 * Runs `train(out, resume)` straight through and as stop-at-half + resume (from the checkpoint rewritten in format 1
 * when `legacy`); returns the two run folders.
 */
async function straightAndResumed(
  name: string,
  n: number,
  train: (out: string, resume: boolean) => Promise<unknown>,
  legacy = false,
): Promise<{ straight: string; resumed: string }> {
  const straight = path.join(root, `${name}-straight`);
  const resumed = path.join(root, `${name}-resumed`);
  hook.stopAfter = -1;
  await train(straight, false);
  hook.stopAfter = n / 2;
  const stopped = await train(resumed, false).then(
    () => null,
    (e: unknown) => e,
  );
  expect(stopped).toBeInstanceOf(StopRequested);
  expect((stopped as StopRequested).code).toBe(130);
  expect(stepOf(resumed)).toBe(n / 2);
  if (legacy) await rewriteAsLegacy(resumed);
  hook.stopAfter = -1;
  await train(resumed, true);
  expect(stepOf(resumed)).toBe(n);
  return { straight, resumed };
}

describe.each(['cpu', 'wasm'] as const)('exact resume on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it.each([['format 2', false], ['legacy format 1', true]] as const)('tokenizer: N steps == N/2 + stop + resume from a %s checkpoint, bit-identical (flips, dead-code restarts, adversarial loss, EMA on)', async (what, legacy) => {
    const N = 6;
    // restarts every 2 steps over a 3-batch window: the step after the resume restarts codes, so the window must be restored;
    // the discriminator starts at step 2, so its params, moments and step count must be too.
    const config = tinyTokenizerConfig({ adversarial: { weight: 0.1, startStep: 2, baseChannels: 8, layers: 1 } });
    const train = tinyTokenizerTrain({ steps: N, restartDeadEvery: 2, usageWindow: 3, checkpointEvery: 3, ema: 0.9 });
    const data = tinyDataset();
    const { straight, resumed } = await straightAndResumed(`tok-${backend}-${legacy}`, N, (out, resume) =>
      trainTokenizer({ out, resume, config, data, train }), legacy,
    );
    // model.safetensors holds the ema/ averages too: they continue exactly
    const ck = await loadCheckpoint(path.join(resumed, 'checkpoint'));
    expect([...ck.tensors.keys()].filter((n) => n.startsWith('ema/')).length).toBe([...ck.tensors.keys()].filter((n) => !/^(ema|disc|state)\//.test(n)).length);
    expect(bytes(resumed, 'model.safetensors').equals(bytes(straight, 'model.safetensors'))).toBe(true);
    expect(bytes(resumed, 'optimizer.safetensors').equals(bytes(straight, 'optimizer.safetensors'))).toBe(true);
  });

  it.each([['format 2', false], ['legacy format 1', true]] as const)('generator: N steps == N/2 + stop + resume from a %s checkpoint, bit-identical (dropout, label dropout and EMA on)', async (what, legacy) => {
    const N = 8;
    const tokFile = path.join(root, `gen-${backend}-${legacy}.tokens`);
    await makeTokenFile(await makeTokenizer(path.join(root, `gen-tok-${backend}-${legacy}`)), tokFile);
    const tokens = readTokenFile(tokFile);
    const config = tinyGeneratorConfig();
    const train = tinyGeneratorTrain({ steps: N, checkpointEvery: 3, ema: 0.9 });
    const { straight, resumed } = await straightAndResumed(`gen-${backend}-${legacy}`, N, (out, resume) =>
      trainGenerator({ out, resume, config, tokens, tokensPath: tokFile, train }), legacy,
    );
    expect(bytes(resumed, 'model.safetensors').equals(bytes(straight, 'model.safetensors'))).toBe(true);
    expect(bytes(resumed, 'optimizer.safetensors').equals(bytes(straight, 'optimizer.safetensors'))).toBe(true);
  });
});

describe('EMA on resume', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('a resume whose --ema contradicts the checkpoint fails with one line; the run is untouched', async () => {
    hook.stopAfter = -1;
    const out = path.join(root, 'ema-contra');
    const req = { out, config: tinyTokenizerConfig(), data: tinyDataset() };
    await trainTokenizer({ ...req, resume: false, train: tinyTokenizerTrain({ steps: 2, ema: 0.9 }) });
    const before = bytes(out, 'model.safetensors');
    const e = await trainTokenizer({ ...req, resume: true, train: tinyTokenizerTrain({ steps: 4 }) }).then(() => null, (err: unknown) => err);
    expect(inCliWords(e)).toBe(`--ema: ${out}/checkpoint was trained with an EMA of its weights; resume with --ema <its decay> or start a new run`);
    const plain = path.join(root, 'ema-none');
    await trainTokenizer({ ...req, out: plain, resume: false, train: tinyTokenizerTrain({ steps: 2 }) });
    const e2 = await trainTokenizer({ ...req, out: plain, resume: true, train: tinyTokenizerTrain({ steps: 4, ema: 0.5 }) }).then(() => null, (err: unknown) => err);
    expect(inCliWords(e2)).toBe(`--ema 0.5: ${plain}/checkpoint holds no EMA of these weights (trained without --ema); resume without it or start a new run`);
    expect(bytes(out, 'model.safetensors').equals(before)).toBe(true);
    // what loads is the average: the loaded weights equal the ema/ tensors
    const ck = await loadCheckpoint(path.join(out, 'checkpoint'));
    const t = await loadTokenizer(out);
    const w = t.tok.params.get('encoder/conv_in/w').dataSync();
    expect(Array.from(w)).toEqual(Array.from(ck.tensors.get('ema/encoder/conv_in/w')!.data));
    expect(Array.from(w)).not.toEqual(Array.from(ck.tensors.get('encoder/conv_in/w')!.data));
    t.tok.params.dispose();
  });
});

describe('EMA settings of runs made before them', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('a run whose record lacks emaWarmup / emaFollowRestarts resumes with the plain average, bit for bit; a new run gets both', async () => {
    const N = 6;
    const config = tinyTokenizerConfig();
    const data = tinyDataset();
    const plain = { ema: 0.9, restartDeadEvery: 2, usageWindow: 3, checkpointEvery: 3, emaWarmup: false, emaFollowRestarts: false };
    const { restartDeadEvery, usageWindow, checkpointEvery, ema } = plain;
    // the run as it trains before the change: half, then its record stripped of the new fields, as an old checkpoint is
    const { straight, resumed } = await straightAndResumed('ema-old', N, async (out, resume) => {
      if (resume) {
        const file = path.join(out, 'checkpoint', 'config.json');
        const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as { extra: { train: Record<string, unknown> } };
        delete rec.extra.train.emaWarmup;
        delete rec.extra.train.emaFollowRestarts;
        fs.writeFileSync(file, JSON.stringify(rec, null, 1));
        // resumed as the CLI does: without the new fields in the request
        return trainTokenizer({ out, resume, config, data, train: tinyTokenizerTrain({ steps: N, restartDeadEvery, usageWindow, checkpointEvery, ema }) });
      }
      return trainTokenizer({ out, resume, config, data, train: tinyTokenizerTrain({ steps: N, ...plain }) });
    });
    expect(bytes(resumed, MODEL_FILE).equals(bytes(straight, MODEL_FILE))).toBe(true);
    // a new run without the fields gets warm-up and restart following: other averages
    const fresh = path.join(root, 'ema-new');
    await trainTokenizer({ out: fresh, resume: false, config, data, train: tinyTokenizerTrain({ steps: N, restartDeadEvery, usageWindow, checkpointEvery, ema }) });
    expect(bytes(fresh, MODEL_FILE).equals(bytes(straight, MODEL_FILE))).toBe(false);
    const rec = JSON.parse(fs.readFileSync(path.join(fresh, 'checkpoint', 'config.json'), 'utf8')) as { extra: { train: Record<string, unknown> } };
    expect([rec.extra.train.emaWarmup, rec.extra.train.emaFollowRestarts]).toEqual([true, true]);
  });
});

describe('no leaks in the training steps', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('tokenizer: the tensor count after step 3 equals the count after step 12 (with restarts and the adversarial loss)', async () => {
    hook.stopAfter = -1;
    hook.tensorsAfterStep = [];
    const config = tinyTokenizerConfig({ adversarial: { weight: 0.1, startStep: 1, baseChannels: 8, layers: 1 } });
    await trainTokenizer({
      out: path.join(root, 'leak-tok'), resume: false, config, data: tinyDataset(),
      train: tinyTokenizerTrain({ steps: 12, restartDeadEvery: 3, checkpointEvery: 4 }),
    });
    expect(hook.tensorsAfterStep.length).toBe(12);
    // The code-usage window keeps its last 3 batches of indices on the device: one more tensor per step until it is full.
    // (Step 1 has no discriminator moments yet: the adversarial loss starts at step 2.)
    expect(hook.tensorsAfterStep[2]! - hook.tensorsAfterStep[1]!).toBe(1);
    expect(hook.tensorsAfterStep[11]).toBe(hook.tensorsAfterStep[2]);
    expect(new Set(hook.tensorsAfterStep.slice(2)).size).toBe(1);
  });

  it('generator: the tensor count after step 2 equals the count after step 12 (with validation)', async () => {
    const tokFile = path.join(root, 'leak.tokens');
    await makeTokenFile(await makeTokenizer(path.join(root, 'leak-gen-tok')), tokFile);
    const tokens = readTokenFile(tokFile);
    hook.stopAfter = -1;
    hook.tensorsAfterStep = [];
    const before = tf.memory().numTensors;
    await trainGenerator({
      out: path.join(root, 'leak-gen'), resume: false, config: tinyGeneratorConfig(), tokens, tokensPath: tokFile, val: tokens,
      train: tinyGeneratorTrain({ steps: 12, valEvery: 2, checkpointEvery: 4 }),
    });
    expect(hook.tensorsAfterStep.length).toBe(12);
    expect(hook.tensorsAfterStep[11]).toBe(hook.tensorsAfterStep[1]);
    expect(new Set(hook.tensorsAfterStep.slice(1)).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before); // the model and optimizer are disposed at the end
  });
});

describe('failures inside the real trainers', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('tokenizer: a full disk at the step-4 save gives one line and exit 2; the step-2 checkpoint loads and resumes', async () => {
    const out = path.join(root, 'enospc-tok');
    const train = tinyTokenizerTrain({ steps: 6, checkpointEvery: 2 });
    const req = { out, config: tinyTokenizerConfig(), data: tinyDataset(), train };
    hook.failSaveAt = 4;
    const e = await trainTokenizer({ ...req, resume: false }).then(() => null, (err: unknown) => err);
    hook.failSaveAt = -1;
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toBe(`${out}/checkpoint: could not save checkpoint (ENOSPC: no space left on device)`);
    expect((e as UserError).exitCode).toBe(2);
    expect(fs.readdirSync(out).sort()).toEqual(['.factorgen.json', 'checkpoint', 'metrics.jsonl']);
    expect(stepOf(out)).toBe(2);
    const t = await loadTokenizer(out);
    t.tok.params.dispose();
    await trainTokenizer({ ...req, resume: true });
    expect(stepOf(out)).toBe(6);
  });

  it('generator: a NaN loss at step 5 stops with exit 3 naming the step; the step-4 checkpoint is kept and loads', async () => {
    const tokFile = path.join(root, 'nan.tokens');
    await makeTokenFile(await makeTokenizer(path.join(root, 'nan-tok')), tokFile);
    const out = path.join(root, 'nan-gen');
    hook.nanAt = 5;
    const e = await trainGenerator({
      out, resume: false, config: tinyGeneratorConfig(), tokens: readTokenFile(tokFile), tokensPath: tokFile,
      train: tinyGeneratorTrain({ steps: 8, checkpointEvery: 2 }),
    }).then(() => null, (err: unknown) => err);
    hook.nanAt = -1;
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toBe(`training diverged: loss is NaN at step 5; stopped, ${out}/checkpoint (step 4) is kept`);
    expect((e as UserError).exitCode).toBe(3);
    expect((await loadCheckpoint(path.join(out, 'checkpoint'), 'generator')).step).toBe(4);
  });
});

describe('CodeHistogram state (what the tokenizer checkpoint keeps for dead-code restarts)', () => {
  it('round-trips counts and the window; a smaller window keeps the newest batches; a wrong size is refused', () => {
    const h = new CodeHistogram([3, 2], 2);
    h.add(Int32Array.from([0, 1, 0, 1])); // pairs (sub-codebook 0, sub-codebook 1)
    h.add(Int32Array.from([1, 0]));
    h.add(Int32Array.from([2, 0, 2, 1])); // the first batch leaves the window
    const s = h.exportState();
    expect([...s.counts]).toEqual([0, 1, 2, 2, 1]);
    expect([...s.window]).toEqual([1, 0, 2, 0, 2, 1]);
    expect([...s.windowSizes]).toEqual([2, 4]);
    const back = new CodeHistogram([3, 2], 2);
    expect(back.importState(s)).toBe(true);
    expect(back.exportState()).toEqual(s);
    back.add(Int32Array.from([0, 0])); // and it keeps sliding like the original
    h.add(Int32Array.from([0, 0]));
    expect(back.exportState()).toEqual(h.exportState());
    const small = new CodeHistogram([3, 2], 1);
    expect(small.importState(s)).toBe(true);
    expect([...small.exportState().counts]).toEqual([0, 0, 2, 1, 1]);
    expect(new CodeHistogram([4, 2], 2).importState(s)).toBe(false);
    expect(new CodeHistogram([3, 2], 2).importState({ ...s, window: Int32Array.from([1, 0, 2, 0, 3, 1]) })).toBe(false); // id 3 >= 3
  });
});
