/**
 * Exact resume: N steps in one run == N/2 steps, a stop (as SIGINT does it: the loop saves and throws StopRequested),
 * then --resume for the rest, bit for bit (weights.bin and optimizer.bin), on the cpu and wasm backends.
 * Also: the tensor count stays flat over the training steps (no leak per step).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, StopRequested, type TrainLoopOptions } from '../../packages/shared/src';
import { trainTokenizer } from '../../packages/tokenizer/src/trainer';
import { trainGenerator } from '../../packages/generator/src/trainer';
import { readTokenFile } from '../../packages/tokenizer/src/tokenFile';
import {
  makeTokenFile, makeTokenizer, tinyDataset, tinyGeneratorConfig, tinyGeneratorTrain, tinyTokenizerConfig, tinyTokenizerTrain,
} from './fixtures';

/** Test hook inside runTrainLoop: after step `stopAfter` a SIGINT is delivered; tensor counts after every step. */
const hook = vi.hoisted(() => ({ stopAfter: -1, tensorsAfterStep: [] as number[] }));

vi.mock('@factorgen/shared', async (importOriginal) => {
  const mod = await importOriginal<typeof import('@factorgen/shared')>();
  const tfm = await import('@tensorflow/tfjs');
  return {
    ...mod,
    runTrainLoop: (o: TrainLoopOptions) =>
      mod.runTrainLoop({
        ...o,
        step: (s: number) => {
          const m = o.step(s);
          hook.tensorsAfterStep.push(tfm.memory().numTensors);
          // What the signal handler sees from a real SIGINT; the loop then saves and throws StopRequested.
          if (s + 1 === hook.stopAfter) process.emit('SIGINT', 'SIGINT');
          return m;
        },
      }),
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

/** Runs `train(out, resume)` straight through and as stop-at-half + resume; returns the two run folders. */
async function straightAndResumed(
  name: string,
  n: number,
  train: (out: string, resume: boolean) => Promise<unknown>,
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
  hook.stopAfter = -1;
  await train(resumed, true);
  expect(stepOf(resumed)).toBe(n);
  return { straight, resumed };
}

describe.each(['cpu', 'wasm'] as const)('exact resume on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('tokenizer: N steps == N/2 + stop + resume, bit-identical (flips, dead-code restarts, adversarial loss on)', async () => {
    const N = 8;
    // restarts every 2 steps over a 3-batch window: the step after the resume restarts codes, so the window must be restored;
    // the discriminator starts at step 2, so its params, moments and step count must be too.
    const config = tinyTokenizerConfig({ adversarial: { weight: 0.1, startStep: 2, baseChannels: 8, layers: 1 } });
    const train = tinyTokenizerTrain({ steps: N, restartDeadEvery: 2, usageWindow: 3, checkpointEvery: 3 });
    const data = tinyDataset();
    const { straight, resumed } = await straightAndResumed(`tok-${backend}`, N, (out, resume) =>
      trainTokenizer({ out, resume, config, data, train }),
    );
    expect(bytes(resumed, 'weights.bin').equals(bytes(straight, 'weights.bin'))).toBe(true);
    expect(bytes(resumed, 'optimizer.bin').equals(bytes(straight, 'optimizer.bin'))).toBe(true);
  });

  it('generator: N steps == N/2 + stop + resume, bit-identical (dropout and label dropout on)', async () => {
    const N = 8;
    const tokFile = path.join(root, `gen-${backend}.tokens`);
    await makeTokenFile(await makeTokenizer(path.join(root, `gen-tok-${backend}`)), tokFile);
    const tokens = readTokenFile(tokFile);
    const config = tinyGeneratorConfig();
    const train = tinyGeneratorTrain({ steps: N, checkpointEvery: 3 });
    const { straight, resumed } = await straightAndResumed(`gen-${backend}`, N, (out, resume) =>
      trainGenerator({ out, resume, config, tokens, tokensPath: tokFile, train }),
    );
    expect(bytes(resumed, 'weights.bin').equals(bytes(straight, 'weights.bin'))).toBe(true);
    expect(bytes(resumed, 'optimizer.bin').equals(bytes(straight, 'optimizer.bin'))).toBe(true);
  });
});

describe('no leaks in the training steps', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('tokenizer: the tensor count after step 2 equals the count after step 12 (with restarts and the adversarial loss)', async () => {
    hook.stopAfter = -1;
    hook.tensorsAfterStep = [];
    const config = tinyTokenizerConfig({ adversarial: { weight: 0.1, startStep: 1, baseChannels: 8, layers: 1 } });
    await trainTokenizer({
      out: path.join(root, 'leak-tok'), resume: false, config, data: tinyDataset(),
      train: tinyTokenizerTrain({ steps: 12, restartDeadEvery: 3, checkpointEvery: 4 }),
    });
    expect(hook.tensorsAfterStep.length).toBe(12);
    expect(hook.tensorsAfterStep[11]).toBe(hook.tensorsAfterStep[1]);
    expect(new Set(hook.tensorsAfterStep.slice(1)).size).toBe(1);
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
