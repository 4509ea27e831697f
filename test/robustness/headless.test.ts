/**
 * Training headless, in-process, as a browser page or a pipeline runs it: no signal handlers, nothing on stderr;
 * progress comes as events, an AbortSignal stops the run after a step (saved), and --resume from there ends
 * bit-identical to a run never stopped (model.safetensors, optimizer.safetensors, metrics.jsonl without timings).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { readTokenFile } from '@factorgen/io';
import { readMetrics, type TrainEvent } from '@factorgen/train';
import { trainGenerator, trainTokenizer } from '@factorgen/pipelines';
import { makeTokenFile, makeTokenizer, tinyDataset, tinyGeneratorConfig, tinyGeneratorTrain, tinyTokenizerConfig, tinyTokenizerTrain } from './fixtures';

let root: string;
let stderr: MockInstance;
beforeAll(async () => {
  await initBackend('cpu');
  tf.tensor([0]).dispose(); // tfjs's one-time console notice comes now, not during the runs below
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-headless-'));
  stderr = vi.spyOn(process.stderr, 'write');
});
afterAll(() => {
  vi.restoreAllMocks();
  fs.rmSync(root, { recursive: true, force: true });
});

const bytes = (run: string, file: string) => fs.readFileSync(path.join(run, 'checkpoint', file));
/** metrics.jsonl without the wall-clock fields (throughput, seconds, CPU seconds), which differ run to run. */
const metricsOf = (run: string) =>
  readMetrics(path.join(run, 'metrics.jsonl')).map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !/PerSec$|^seconds$|^cpuSeconds$/.test(k))));
const listeners = () => process.listenerCount('SIGINT') + process.listenerCount('SIGTERM');

/** Records every event (as type:step) and the signal listeners seen at each; aborts `abort` after step `stopAfter`. */
function watcher(abort: AbortController | null, stopAfter: number, reason?: unknown) {
  const seen: string[] = [];
  const listenerCounts = new Set<number>();
  const onEvent = (e: TrainEvent) => {
    listenerCounts.add(listeners());
    const at = e.type === 'start' ? e.startStep : e.type === 'done' ? e.stepsDone : e.type === 'log' ? e.record.step : e.step;
    seen.push(`${e.type}:${at}`);
    if (e.type === 'step' && e.step === stopAfter) abort?.abort(reason);
  };
  return { seen, listenerCounts, onEvent };
}

describe('a headless run stopped by an AbortSignal and resumed', () => {
  it('tokenizer: stops after step 3 of 6 with AbortError, saved; resumed, it equals the run never stopped, bit for bit', async () => {
    const config = tinyTokenizerConfig({ adversarial: { weight: 0.1, startStep: 2, baseChannels: 8, layers: 1 } });
    const train = tinyTokenizerTrain({ steps: 6, restartDeadEvery: 2, usageWindow: 3, checkpointEvery: 1000, logEvery: 2, ema: 0.9 });
    const data = tinyDataset();
    const straight = path.join(root, 'tok-straight');
    const stopped = path.join(root, 'tok-stopped');
    const before = listeners();
    const tensors = tf.memory().numTensors;
    stderr.mockClear();

    const whole = watcher(null, -1);
    const done = await trainTokenizer({ out: straight, resume: false, config, data, train, onEvent: whole.onEvent });
    expect(done.stepsDone).toBe(6);
    expect(whole.seen).toEqual([
      'start:0', 'step:1', 'log:2', 'step:2', 'step:3', 'log:4', 'step:4', 'step:5', 'log:6', 'step:6', 'checkpoint:6', 'done:6',
    ]);

    const abort = new AbortController();
    const half = watcher(abort, 3);
    const e = await trainTokenizer({ out: stopped, resume: false, config, data, train, signal: abort.signal, onEvent: half.onEvent }).then(
      () => null,
      (err: unknown) => err,
    );
    // abort() without a reason: the standard AbortError
    expect(e).toBeInstanceOf(DOMException);
    expect((e as DOMException).name).toBe('AbortError');
    expect(half.seen).toEqual(['start:0', 'step:1', 'log:2', 'step:2', 'step:3', 'checkpoint:3', 'stopped:3']);
    expect(JSON.parse(fs.readFileSync(path.join(stopped, 'checkpoint', 'config.json'), 'utf8')).step).toBe(3);
    // the stopped run freed everything it made, and released its folder (the resume below takes its lock)
    expect(tf.memory().numTensors).toBe(tensors);

    const rest = watcher(new AbortController(), -1);
    const resumed = await trainTokenizer({ out: stopped, resume: true, config, data, train, onEvent: rest.onEvent });
    expect(resumed.stepsDone).toBe(6);
    expect(rest.seen).toEqual(['start:3', 'log:4', 'step:4', 'step:5', 'log:6', 'step:6', 'checkpoint:6', 'done:6']);
    expect(bytes(stopped, 'model.safetensors').equals(bytes(straight, 'model.safetensors'))).toBe(true);
    expect(bytes(stopped, 'optimizer.safetensors').equals(bytes(straight, 'optimizer.safetensors'))).toBe(true);
    expect(metricsOf(stopped)).toEqual(metricsOf(straight));
    expect(resumed.usage).toEqual(done.usage);

    // headless: no signal handler was added at any point, nothing was written to stderr
    expect([...whole.listenerCounts, ...half.listenerCounts, ...rest.listenerCounts]).toEqual([before, before, before]);
    expect(stderr).not.toHaveBeenCalled();
  });

  it("generator: the loop rejects with the abort's own reason; resumed, it equals the run never stopped", async () => {
    const tokFile = path.join(root, 'gen.tokens');
    await makeTokenFile(await makeTokenizer(path.join(root, 'gen-tok')), tokFile);
    const tokens = readTokenFile(tokFile);
    const req = { config: tinyGeneratorConfig(), tokens, tokensPath: tokFile, train: tinyGeneratorTrain({ steps: 8, checkpointEvery: 3, ema: 0.9 }) };
    const straight = path.join(root, 'gen-straight');
    const stopped = path.join(root, 'gen-stopped');
    stderr.mockClear();
    await trainGenerator({ ...req, out: straight, resume: false });
    const abort = new AbortController();
    const reason = new Error('the page was closed');
    const w = watcher(abort, 5, reason);
    const e = await trainGenerator({ ...req, out: stopped, resume: false, signal: abort.signal, onEvent: w.onEvent }).then(() => null, (err: unknown) => err);
    expect(e).toBe(reason);
    // step 3's periodic checkpoint, then the stop's at step 5
    expect(w.seen.filter((s) => /^(checkpoint|stopped)/.test(s))).toEqual(['checkpoint:3', 'checkpoint:5', 'stopped:5']);
    await trainGenerator({ ...req, out: stopped, resume: true });
    expect(bytes(stopped, 'model.safetensors').equals(bytes(straight, 'model.safetensors'))).toBe(true);
    expect(bytes(stopped, 'optimizer.safetensors').equals(bytes(straight, 'optimizer.safetensors'))).toBe(true);
    expect(metricsOf(stopped)).toEqual(metricsOf(straight));
    expect(stderr).not.toHaveBeenCalled();
  });
});
