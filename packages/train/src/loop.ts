import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '@factorgen/tfjs-ext';
import { MetricsLog } from './metrics';

/** Named metric values as read on the host (must include `loss`). */
export type StepMetrics = Record<string, number>;

/**
 * What one optimization step reports: named scalars, either numbers the host already knows (the learning rate) or
 * scalar tensors still on the device. The loop owns and disposes the tensors; it reads them only on logged steps
 * (and to name the culprit of a divergence), so a GPU step does not wait for numbers nobody logs.
 */
export type StepOutput = Record<string, number | tf.Scalar>;

export type TrainLoopOptions = {
  /** Shown on the progress line, e.g. "tokenizer". */
  label: string;
  /** First step to run (0, or the checkpoint's step on --resume) and the total step count. */
  startStep: number;
  totalSteps: number;
  /**
   * Runs one step and resolves to its metrics; its randomness must depend only on (seed, step) so resume is exact.
   * `logged` says whether the loop will read this step's metrics (trainers may skip work only logs need).
   */
  step: (step: number, logged: boolean) => Promise<StepOutput>;
  /** Writes a checkpoint holding the state after `stepsDone` steps. */
  save: (stepsDone: number) => Promise<void>;
  checkpointEvery: number;
  /** Where checkpoints go, named in messages. */
  checkpointDir: string;
  metrics: MetricsLog;
  /** Extra metrics merged into the log line every `logEvery` steps (e.g. codebook usage). */
  periodic?: (stepsDone: number) => StepMetrics | Promise<StepMetrics>;
  logEvery: number;
  /**
   * The progress line: device metrics read every step (in the same single read as the NaN check, so they are
   * current, not the last log point's) and what to show from the step's metrics. Default: every metric, device ones
   * as of the last log point.
   */
  progress?: { readEveryStep: string[]; show: (m: StepMetrics) => Record<string, number> };
  /** Images or tokens per step, for throughput in the log. */
  itemsPerStep?: number;
  itemName?: string;
} & TrainHooks;

/**
 * What a training loop reports as it runs, in this order: `start` once (before the first step), `step` after every
 * step, `log` with each record written to metrics.jsonl, `checkpoint` after each save, then `done` (the run reached its
 * total) or `stopped` (the signal was aborted; the state after `step` steps was saved). A failure (divergence, a failed
 * save) ends the run with a rejection instead, after no further event.
 */
export type TrainEvent =
  | { type: 'start'; label: string; startStep: number; totalSteps: number; checkpointDir: string }
  /** `fields`: what a progress line shows (TrainLoopOptions.progress.show of the latest metrics); `metrics`: this step's numbers as read. */
  | { type: 'step'; step: number; totalSteps: number; metrics: StepMetrics; fields: Record<string, number> }
  | { type: 'log'; record: Record<string, number> }
  | { type: 'checkpoint'; step: number; checkpointDir: string }
  | { type: 'done'; stepsDone: number; seconds: number }
  | { type: 'stopped'; step: number; checkpointDir: string };

/**
 * How a caller watches and stops a run without the loop touching the process (no signal handlers, no stderr): the
 * CLI turns events into its progress line and SIGINT/SIGTERM into an abort; a test or a browser page can do the same.
 */
export type TrainHooks = {
  /**
   * Checked between steps: once aborted, the loop saves the state after the step just finished, emits `stopped`
   * and rejects with the signal's reason (an AbortError DOMException when abort() was given none).
   */
  signal?: AbortSignal;
  /** Called synchronously with each event; what it throws ends the run. */
  onEvent?: (e: TrainEvent) => void;
};

export type TrainLoopResult = { stepsDone: number; seconds: number; itemsPerSecond: number; last: StepMetrics };

/**
 * Reads a step's metrics: host numbers always; device scalars only when `all` is set or when one of them is not
 * finite (one flag read per step decides that). Disposes the tensors. Resolves to the numbers read and, if any metric
 * is NaN/Inf, the first such one (in the record's order).
 */
export async function readStepMetrics(out: StepOutput, all: boolean, always: readonly string[] = []): Promise<{ metrics: StepMetrics; bad: [string, number] | null }> {
  const entries = Object.entries(out);
  const tensors = entries.filter((e): e is [string, tf.Scalar] => e[1] instanceof tf.Tensor);
  try {
    let read = all;
    // `always`: read with the flag in one [1 + n] read (one device sync per step, as before).
    const picked = tensors.filter(([k]) => always.includes(k));
    const early = new Map<string, number>();
    if (!read && tensors.length > 0) {
      const packed = tf.tidy(() => {
        const flag = tf.all(tf.isFinite(tf.stack(tensors.map(([, t]) => tf.cast(tf.reshape(t, []), 'float32')))));
        return tf.concat([tf.reshape(tf.cast(flag, 'float32'), [1]), ...picked.map(([, t]) => tf.reshape(tf.cast(t, 'float32'), [1]))]);
      });
      const d = await packed.data();
      packed.dispose();
      read = !d[0];
      picked.forEach(([k], i) => early.set(k, d[i + 1]!));
    }
    const values = read ? await Promise.all(tensors.map(([, t]) => t.data())) : [];
    const byName = new Map(tensors.map(([k], i) => [k, values[i]?.[0] ?? early.get(k)]));
    const metrics: StepMetrics = {};
    let bad: [string, number] | null = null;
    for (const [k, v] of entries) {
      const x = typeof v === 'number' ? v : byName.get(k);
      if (x === undefined) continue;
      metrics[k] = x;
      if (bad === null && !Number.isFinite(x)) bad = [k, x];
    }
    return { metrics, bad };
  } finally {
    tf.dispose(tensors.map(([, t]) => t));
  }
}

/**
 * The training loop shared by every trainer: runs steps, logs metrics.jsonl, checkpoints every N steps and at the
 * end, and reports each of these as a TrainEvent. A NaN/Inf metric stops the run naming the step, without saving
 * (the last good checkpoint stays). An aborted `signal` is seen after the step it arrived in: that step is saved
 * atomically, then the loop rejects with the signal's reason (the CLI aborts with StopRequested: exit 130/143).
 */
export async function runTrainLoop(o: TrainLoopOptions): Promise<TrainLoopResult> {
  // A resumed run past the requested total would train nothing and report an empty result as success.
  if (o.startStep > o.totalSteps) {
    throw new UserError(`the run in ${path.dirname(o.checkpointDir)} is already at step ${o.startStep}; give \`steps\` > ${o.startStep} to continue`, { field: 'steps', value: o.totalSteps });
  }
  const emit = o.onEvent ?? (() => {});
  emit({ type: 'start', label: o.label, startStep: o.startStep, totalSteps: o.totalSteps, checkpointDir: o.checkpointDir });
  const t0 = performance.now();
  // Process CPU time beside wall time: on a shared machine the rate per CPU-second stays near the idle figure.
  const cpu0 = process.cpuUsage();
  let lastSaved = o.startStep;
  let last: StepMetrics = {};
  let shown: StepMetrics = {};
  let step = o.startStep;
  const save = async (stepsDone: number) => {
    await o.save(stepsDone);
    emit({ type: 'checkpoint', step: stepsDone, checkpointDir: o.checkpointDir });
  };
  while (step < o.totalSteps) {
    const logged = (step + 1) % o.logEvery === 0 || step + 1 === o.totalSteps;
    const { metrics: m, bad } = await readStepMetrics(await o.step(step, logged), logged, o.progress?.readEveryStep);
    if (bad) {
      const kept = lastSaved > 0 ? `${o.checkpointDir} (step ${lastSaved}) is kept` : 'no checkpoint was written yet';
      throw new UserError(`training diverged: ${bad[0]} is ${bad[1]} at step ${step + 1}; stopped, ${kept}`, 3);
    }
    step += 1;
    last = m;
    // Unlogged steps read only host numbers: the progress line shows the last logged values of the others.
    shown = { ...shown, ...m };
    const elapsed = (performance.now() - t0) / 1000;
    const rate = ((step - o.startStep) * (o.itemsPerStep ?? 1)) / Math.max(elapsed, 1e-9);
    if (logged) {
      const extra = o.periodic ? await o.periodic(step) : {};
      const c = process.cpuUsage(cpu0);
      const record = { step, ...m, ...extra, [`${o.itemName ?? 'items'}PerSec`]: rate, seconds: elapsed, cpuSeconds: (c.user + c.system) / 1e6 };
      o.metrics.write(record);
      emit({ type: 'log', record });
    }
    emit({ type: 'step', step, totalSteps: o.totalSteps, metrics: m, fields: o.progress ? o.progress.show(shown) : shown });
    // A step may never yield (the cpu backend's reads resolve at once): give whoever aborts (a signal handler, a
    // timer) a turn of the event loop.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (o.signal?.aborted) {
      await save(step);
      emit({ type: 'stopped', step, checkpointDir: o.checkpointDir });
      o.signal.throwIfAborted();
    }
    if (step % o.checkpointEvery === 0 && step < o.totalSteps) {
      await save(step);
      lastSaved = step;
    }
  }
  if (o.totalSteps > lastSaved || o.startStep === o.totalSteps) await save(o.totalSteps);
  const seconds = (performance.now() - t0) / 1000;
  emit({ type: 'done', stepsDone: step, seconds });
  return {
    stepsDone: step,
    seconds,
    itemsPerSecond: ((step - o.startStep) * (o.itemsPerStep ?? 1)) / Math.max(seconds, 1e-9),
    last,
  };
}
