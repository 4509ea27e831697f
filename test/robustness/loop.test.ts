/**
 * The shared training loop under failure: NaN/Inf metrics, a save that fails, a real signal arriving mid-run (caught
 * by the CLI's stop handler, which aborts the loop's signal).
 * The "model" is one variable w that each step increments, so a checkpoint's step and w say exactly which state it holds.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { loadCheckpoint, saveCheckpoint, type CheckpointIo } from '@factorgen/io';
import { MetricsLog, readMetrics } from '@factorgen/train';
import { StopRequested, installStopHandler } from '@factorgen/cli/ui/signals';
import { runTrainLoop, type StepMetrics, type TrainHooks } from '@factorgen/train';
import { inCliWords } from '../support/cliWords';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-loop-'));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true); // progress lines and stop notices
});
afterAll(() => {
  vi.restoreAllMocks();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A loop over w (starts at 0, +1 per step) checkpointing into `name/checkpoint`; `metricAt(step)` can poison a step's metrics. */
function setup(
  name: string,
  opts: { total: number; every: number; metricAt?: (step: number) => StepMetrics; io?: (stepsDone: number) => Partial<CheckpointIo>; logEvery?: number },
) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const checkpointDir = path.join(dir, 'checkpoint');
  const w = tf.variable(tf.scalar(0));
  const saved: number[] = [];
  const run = (hooks: TrainHooks = {}) =>
    runTrainLoop({
      ...hooks,
      label: 'test',
      startStep: 0,
      totalSteps: opts.total,
      // Metrics as device scalars, like the trainers' (the loop reads them only on logged steps), plus a host number.
      step: async (s) => {
        tf.tidy(() => w.assign(tf.scalar(s + 1)));
        const m: StepMetrics = { loss: 1 / (s + 1), ...(opts.metricAt?.(s + 1) ?? {}) };
        return { lr: 0.5, ...Object.fromEntries(Object.entries(m).map(([k, v]) => [k, tf.scalar(v)])) };
      },
      save: async (stepsDone) => {
        saved.push(stepsDone);
        await saveCheckpoint(checkpointDir, { kind: 'test', config: {}, step: stepsDone, params: new Map([['w', w]]) }, opts.io?.(stepsDone) ?? {});
      },
      checkpointEvery: opts.every,
      checkpointDir,
      metrics: new MetricsLog(path.join(dir, 'metrics.jsonl'), false),
      logEvery: opts.logEvery ?? 1,
    });
  return { dir, checkpointDir, w, saved, run };
}

const failure = async (p: Promise<unknown>): Promise<unknown> => p.then(() => new Error('expected a failure'), (e: unknown) => e);

describe('NaN or Inf in training', () => {
  it('stops naming the step and the metric, exit code 3, keeps the last good checkpoint loadable', async () => {
    const t = setup('nan', { total: 10, every: 2, metricAt: (step): StepMetrics => (step === 5 ? { loss: NaN } : {}) });
    const e = await failure(t.run());
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toBe(`training diverged: loss is NaN at step 5; stopped, ${t.checkpointDir} (step 4) is kept`);
    expect((e as UserError).exitCode).toBe(3);
    expect(t.saved).toEqual([2, 4]); // nothing saved after the bad step
    const ck = await loadCheckpoint(t.checkpointDir, 'test');
    expect(ck.step).toBe(4);
    expect([...ck.tensors.get('w')!.data]).toEqual([4]);
    expect(readMetrics(path.join(t.dir, 'metrics.jsonl')).map((r) => r.step)).toEqual([1, 2, 3, 4]);
    t.w.dispose();
  });

  it('a NaN on a step that is not logged still stops at that exact step; unlogged steps read one flag, logged ones all', async () => {
    const reads: number[] = [];
    const data = vi.spyOn(tf.Tensor.prototype, 'data');
    const t = setup('nan-unlogged', {
      total: 20, every: 4, logEvery: 5,
      metricAt: (step): StepMetrics => {
        reads.push(data.mock.calls.length); // reads made before this step began
        return step === 7 ? { gradNorm: NaN, acc: 1 } : { gradNorm: 1, acc: 1 };
      },
    });
    const e = await failure(t.run());
    data.mockRestore();
    expect((e as UserError).message).toBe(`training diverged: gradNorm is NaN at step 7; stopped, ${t.checkpointDir} (step 4) is kept`);
    expect(t.saved).toEqual([4]);
    const perStep = reads.slice(1).map((r, i) => r - reads[i]!); // reads of steps 1..6 (checkpoint saves read w too)
    expect(perStep).toEqual([1, 1, 1, 1 + 1, 3, 1]); // step 4 saved w; step 5 was logged: loss, gradNorm, acc
    expect(readMetrics(path.join(t.dir, 'metrics.jsonl')).map((r) => [r.step, r.lr, r.loss])).toEqual([[5, 0.5, Math.fround(0.2)]]); // loss went through a float32 tensor
    t.w.dispose();
  });

  it('Inf in any metric counts too; before the first checkpoint it says none was written', async () => {
    const t = setup('inf', { total: 10, every: 4, metricAt: (step): StepMetrics => (step === 2 ? { gradNorm: Infinity } : {}) });
    const e = await failure(t.run());
    expect((e as UserError).message).toBe('training diverged: gradNorm is Infinity at step 2; stopped, no checkpoint was written yet');
    expect((e as UserError).exitCode).toBe(3);
    expect(fs.existsSync(t.checkpointDir)).toBe(false);
    t.w.dispose();
  });
});

describe('a resumed run already past the total', () => {
  it('is refused naming --steps and the step reached; no step runs, nothing is saved', async () => {
    const dir = path.join(root, 'past');
    const calls: string[] = [];
    const e = await failure(
      runTrainLoop({
        label: 'test', startStep: 40, totalSteps: 20, checkpointEvery: 10, checkpointDir: path.join(dir, 'checkpoint'), logEvery: 1,
        metrics: new MetricsLog(path.join(dir, 'metrics.jsonl'), false),
        step: async () => (calls.push('step'), { loss: 1 }),
        save: async () => void calls.push('save'),
      }),
    );
    expect(e).toBeInstanceOf(UserError);
    expect(inCliWords(e)).toBe(`--steps 20: the run in ${dir} is already at step 40; give --steps > 40 to continue`);
    expect(calls).toEqual([]);
  });
});

describe('a save that fails', () => {
  const enospc = (): Partial<CheckpointIo> => ({
    writeFile: async () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    },
  });

  it('a full disk at the second checkpoint: one-line error, exit 2, the first checkpoint still loads, no temp folders left', async () => {
    const t = setup('enospc', { total: 10, every: 3, io: (stepsDone) => (stepsDone === 6 ? enospc() : {}) });
    const e = await failure(t.run());
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toBe(`${t.checkpointDir}: could not save checkpoint (ENOSPC: no space left on device)`);
    expect((e as UserError).exitCode).toBe(2);
    const ck = await loadCheckpoint(t.checkpointDir, 'test');
    expect([ck.step, ...ck.tensors.get('w')!.data]).toEqual([3, 3]);
    expect(fs.readdirSync(t.dir).sort()).toEqual(['checkpoint', 'metrics.jsonl']);
    t.w.dispose();
  });

  it('a failing rename of the new checkpoint into place puts the previous one back', async () => {
    let renames = 0;
    const failSecondRename = (): Partial<CheckpointIo> => ({
      rename: async (from, to) => {
        if (++renames === 2) throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
        await fs.promises.rename(from, to);
      },
    });
    const t = setup('eio', { total: 10, every: 2, io: (stepsDone) => (stepsDone === 4 ? failSecondRename() : {}) });
    const e = await failure(t.run());
    expect((e as UserError).message).toBe(`${t.checkpointDir}: could not save checkpoint (EIO: i/o error)`);
    expect((await loadCheckpoint(t.checkpointDir, 'test')).step).toBe(2);
    expect(fs.readdirSync(t.dir).sort()).toEqual(['checkpoint', 'metrics.jsonl']);
    t.w.dispose();
  });

  it('a run folder whose checkpoint path is a file: refuses to replace it, the file is untouched', async () => {
    const t = setup('file', { total: 3, every: 10 });
    fs.writeFileSync(t.checkpointDir, 'my notes');
    const e = await failure(t.run());
    expect((e as UserError).message).toBe(`${t.checkpointDir}: exists and is not a checkpoint folder (refusing to replace it)`);
    expect(fs.readFileSync(t.checkpointDir, 'utf8')).toBe('my notes');
    t.w.dispose();
  });
});

describe('a real signal during a run of synchronous steps', () => {
  it('is seen after the step it arrived in: the loop saves that step and stops with 130', async () => {
    // Keeps the process alive should the stop handler be gone before the signal is delivered (the failure mode).
    const keepAlive = () => {};
    process.on('SIGINT', keepAlive);
    try {
      let sent = 0;
      const t = setup('signal', {
        total: 100_000,
        every: 100_000,
        metricAt: (step) => {
          if (step === 3) {
            sent = step;
            process.kill(process.pid, 'SIGINT'); // delivered asynchronously, like Ctrl-C
          }
          if (step > 200) throw new Error(`the signal sent at step ${sent} was not seen by step ${step}`);
          return {};
        },
      });
      // The CLI's handler: the first SIGINT aborts the loop's signal with StopRequested.
      const stop = installStopHandler();
      const e = await failure(t.run({ signal: stop.signal })).finally(() => stop.dispose());
      expect(e).toBeInstanceOf(StopRequested);
      expect((e as StopRequested).code).toBe(130);
      expect(t.saved.length).toBe(1);
      expect(t.saved[0]).toBeGreaterThanOrEqual(3);
      expect(t.saved[0]).toBeLessThanOrEqual(5);
      const ck = await loadCheckpoint(t.checkpointDir, 'test');
      expect([ck.step, ...ck.tensors.get('w')!.data]).toEqual([t.saved[0], t.saved[0]]);
      t.w.dispose();
    } finally {
      await new Promise((r) => setTimeout(r, 50));
      process.off('SIGINT', keepAlive);
    }
  });
});
