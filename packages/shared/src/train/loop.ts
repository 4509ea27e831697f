import { UserError } from '../errors';
import { MetricsLog } from '../cli/metrics';
import { Progress } from '../cli/progress';
import { installStopHandler, exitCodeFor } from '../cli/signals';
import { StopRequested } from '../cli/run';

/** What one optimization step reports: named scalars (must include `loss`). */
export type StepMetrics = Record<string, number>;

export type TrainLoopOptions = {
  /** Shown on the progress line, e.g. "tokenizer". */
  label: string;
  /** First step to run (0, or the checkpoint's step on --resume) and the total step count. */
  startStep: number;
  totalSteps: number;
  /** Runs one step and returns its metrics; its randomness must depend only on (seed, step) so resume is exact. */
  step: (step: number) => StepMetrics;
  /** Writes a checkpoint holding the state after `stepsDone` steps. */
  save: (stepsDone: number) => Promise<void>;
  checkpointEvery: number;
  /** Where checkpoints go, named in messages. */
  checkpointDir: string;
  metrics: MetricsLog;
  /** Extra metrics merged into the log line every `logEvery` steps (e.g. codebook usage). */
  periodic?: (stepsDone: number) => StepMetrics;
  logEvery: number;
  /** Images or tokens per step, for throughput in the log. */
  itemsPerStep?: number;
  itemName?: string;
};

export type TrainLoopResult = { stepsDone: number; seconds: number; itemsPerSecond: number; last: StepMetrics };

/**
 * The training loop shared by every trainer: runs steps, logs metrics.jsonl and progress, checkpoints every N steps
 * and at the end. A NaN/Inf metric stops the run naming the step, without saving (the last good checkpoint stays).
 * SIGINT/SIGTERM: finishes the current step, saves atomically, then throws StopRequested (exit 130/143).
 */
export async function runTrainLoop(o: TrainLoopOptions): Promise<TrainLoopResult> {
  const stop = installStopHandler();
  const progress = new Progress(o.totalSteps, o.label);
  const t0 = performance.now();
  let lastSaved = o.startStep;
  let last: StepMetrics = {};
  let step = o.startStep;
  try {
    while (step < o.totalSteps) {
      const m = o.step(step);
      for (const [k, v] of Object.entries(m)) {
        if (!Number.isFinite(v)) {
          const kept = lastSaved > 0 ? `${o.checkpointDir} (step ${lastSaved}) is kept` : 'no checkpoint was written yet';
          throw new UserError(`training diverged: ${k} is ${v} at step ${step + 1}; stopped, ${kept}`, 3);
        }
      }
      step += 1;
      last = m;
      const elapsed = (performance.now() - t0) / 1000;
      const rate = ((step - o.startStep) * (o.itemsPerStep ?? 1)) / Math.max(elapsed, 1e-9);
      if (step % o.logEvery === 0 || step === o.totalSteps) {
        const extra = o.periodic ? o.periodic(step) : {};
        const record = { step, ...m, ...extra, [`${o.itemName ?? 'items'}PerSec`]: rate, seconds: elapsed };
        o.metrics.write(record);
      }
      progress.update(step, m);
      // Steps are synchronous: without a turn of the event loop a SIGINT/SIGTERM would not be seen until the next save.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const signal = stop.requested();
      if (signal) {
        await o.save(step);
        progress.done();
        process.stderr.write(`${signal}: saved checkpoint at step ${step} to ${o.checkpointDir}; resume with --resume\n`);
        throw new StopRequested(exitCodeFor(signal));
      }
      if (step % o.checkpointEvery === 0 && step < o.totalSteps) {
        await o.save(step);
        lastSaved = step;
      }
    }
    if (o.totalSteps > lastSaved || o.startStep === o.totalSteps) await o.save(o.totalSteps);
    progress.done();
  } finally {
    stop.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    stepsDone: step,
    seconds,
    itemsPerSecond: ((step - o.startStep) * (o.itemsPerStep ?? 1)) / Math.max(seconds, 1e-9),
    last,
  };
}
