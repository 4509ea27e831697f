import * as tf from '@tensorflow/tfjs';
import { restoreAdamState, saveCheckpoint } from '@factorgen/io';
import { assignParams, type LoadedCheckpoint } from '@factorgen/formats';
import { disposeAdamState, mergeAdamStates, splitAdamState, startEma, EMA_PREFIX, type AdamState, type Ema } from '@factorgen/nn';
import { openRunDir, type RunDir } from './runDir';
import { runTrainLoop, type TrainHooks, type TrainLoopOptions, type TrainLoopResult } from './loop';

/**
 * A piece of training state beside the trained weights that a checkpoint keeps so that resume is exact: the EMA of
 * the weights, the tokenizer's code-usage window, ... Each hook is optional.
 */
export type StatePart = {
  /** Checkpoint tensors this part owns (e.g. `ema/...`): they are not model weights, so they are kept from assignParams. */
  owns?: (tensorName: string) => boolean;
  /**
   * Called once before the first step with the checkpoint on --resume (null for a new run) and the checkpoint folder
   * (for messages); throws a UserError when the checkpoint contradicts the request.
   */
  start?: (resumed: LoadedCheckpoint | null, where: string) => void;
  /**
   * What the part writes into a checkpoint after `stepsDone` steps: tensors (appended after the weights, in the
   * order of the parts) and fields merged into `extra`. `release` runs after the write (frees temporary tensors).
   */
  snapshot?: (stepsDone: number) => PartSnapshot | Promise<PartSnapshot>;
  /** Frees the part's tensors when the run ends. */
  dispose?: () => void;
};

export type PartSnapshot = { tensors?: Map<string, tf.Tensor>; extra?: Record<string, unknown>; release?: () => void };

/**
 * An optimizer's state held in the checkpoint's one optimizer record. A second slot (e.g. the discriminator's) holds
 * the moments of the parameters it `owns` and keeps its own step count in `extra[stepKey]` (0 when absent).
 * `state` is updated in place on resume, so a step function may hold on to it.
 */
export type OptimizerSlot = { state: AdamState; owns?: (paramName: string) => boolean; stepKey?: string };

/** What a trainer gives the harness: its model, its state and its step; the harness does the rest. */
export type Trainer<T extends object> = {
  /** The model config written to config.json (on --resume: the checkpoint's own). */
  config: object;
  /** The trained weights, restored by name on --resume and saved first, in this order. */
  params: Map<string, tf.Variable>;
  /** The first slot takes every moment no later slot owns. */
  optimizers: OptimizerSlot[];
  parts?: StatePart[];
  /** The checkpoint's `extra` record (the run's settings, dataset, ...), before the parts' fields. */
  extra: () => Record<string, unknown>;
  /** The loop: its step function and schedule (the harness gives it the start step, save, run folder and hooks). */
  loop: Omit<TrainLoopOptions, 'startStep' | 'save' | 'checkpointDir' | 'metrics' | 'signal' | 'onEvent'>;
  /** Runs after the last checkpoint, before anything is disposed: the trainer's own figures for the result. */
  finish?: (result: TrainLoopResult, run: RunDir) => T | Promise<T>;
  /** Frees the model's own tensors (the harness frees the optimizer states and the parts). */
  dispose: () => void;
};

export type TrainerRequest = TrainHooks & {
  /** The run folder; its checkpoint is `<out>/checkpoint`. */
  out: string;
  /** Checkpoint kind ('tokenizer', 'generator', 'teacher'). */
  kind: string;
  resume: boolean;
  overwrite?: boolean;
  /** On resume: throws when the request contradicts the checkpoint (before anything is written). */
  checkResume?: (ck: LoadedCheckpoint) => void;
};

export type TrainerResult<T> = TrainLoopResult & T & { checkpointDir: string };

/**
 * One training run, whatever the model: opens the run folder under its lock (resume: loads the checkpoint), lets
 * `setup` build the trainer from it (the resumed checkpoint's config and record are on `run.resumed`), restores the
 * weights, the optimizer slots and the state parts, runs the loop (headless: events and an AbortSignal, see
 * TrainHooks) saving checkpoints of weights + parts' tensors, optimizer and `extra`, then `finish`, and frees
 * everything and releases the folder whatever happens. The start step is the checkpoint's step (0 for a new run).
 */
export async function runTrainer<T extends object>(req: TrainerRequest, setup: (run: RunDir) => Trainer<T> | Promise<Trainer<T>>): Promise<TrainerResult<T>> {
  const run = await openRunDir(req.out, req.kind, req.resume, { overwrite: req.overwrite, checkResume: req.checkResume });
  try {
    const t = await setup(run);
    const parts = t.parts ?? [];
    try {
      const ck = run.resumed;
      if (ck) {
        assignParams(t.params, new Map([...ck.tensors].filter(([name]) => !parts.some((p) => p.owns?.(name)))), run.checkpointDir);
        if (ck.optimizer) restoreOptimizers(t.optimizers, restoreAdamState(ck.optimizer), ck.extra ?? {});
      }
      for (const p of parts) p.start?.(ck, run.checkpointDir);
      const save = async (stepsDone: number) => {
        const snaps: PartSnapshot[] = [];
        try {
          for (const p of parts) if (p.snapshot) snaps.push(await p.snapshot(stepsDone));
          const optimizer = t.optimizers.map((s) => s.state).reduce((a, b) => mergeAdamStates(a, b));
          const stepKeys = Object.fromEntries(t.optimizers.filter((s) => s.stepKey).map((s) => [s.stepKey!, s.state.step]));
          await saveCheckpoint(run.checkpointDir, {
            kind: req.kind,
            config: t.config,
            step: stepsDone,
            params: new Map<string, tf.Tensor>([...t.params, ...snaps.flatMap((s) => [...(s.tensors ?? [])])]),
            optimizer,
            extra: Object.assign(t.extra(), stepKeys, ...snaps.map((s) => s.extra ?? {})),
          });
        } finally {
          for (const s of snaps) s.release?.();
        }
      };
      const result = await runTrainLoop({
        ...t.loop,
        startStep: ck ? ck.step : 0,
        save,
        checkpointDir: run.checkpointDir,
        metrics: run.metrics,
        ...(req.signal ? { signal: req.signal } : {}),
        ...(req.onEvent ? { onEvent: req.onEvent } : {}),
      });
      const own = t.finish ? await t.finish(result, run) : ({} as T);
      return { ...result, ...own, checkpointDir: run.checkpointDir };
    } finally {
      for (const s of t.optimizers) disposeAdamState(s.state);
      for (const p of parts) p.dispose?.();
      t.dispose();
    }
  } finally {
    run.release();
  }
}

/** Moves a restored optimizer state into the slots, in place: each later slot takes the moments it owns. */
function restoreOptimizers(slots: OptimizerSlot[], all: AdamState, extra: object): void {
  let rest = all;
  for (let i = slots.length - 1; i >= 0; i--) {
    const slot = slots[i]!;
    let mine = rest;
    if (i > 0) [rest, mine] = splitAdamState(rest, slot.owns ?? (() => false));
    disposeAdamState(slot.state); // the fresh, empty state the trainer made
    slot.state.m = mine.m;
    slot.state.v = mine.v;
    const recorded = slot.stepKey ? (extra as Record<string, unknown>)[slot.stepKey] : undefined;
    slot.state.step = slot.stepKey ? (typeof recorded === 'number' ? recorded : 0) : mine.step;
  }
}

/**
 * The EMA of `params` as a state part (see Ema, startEma): none when decay is 0; on resume restored from the
 * checkpoint's `ema/` tensors, refusing a --ema that contradicts it; saved after the weights. `ema` is set once
 * the part started (the step function calls its update).
 */
export function emaPart(params: Map<string, tf.Variable>, decay: number, warmup: boolean): StatePart & { ema: Ema | null } {
  const part: StatePart & { ema: Ema | null } = {
    ema: null,
    owns: (name) => name.startsWith(EMA_PREFIX),
    start: (resumed, where) => {
      part.ema = startEma(params, decay, resumed ? { step: resumed.step, tensors: resumed.tensors } : null, where, warmup);
    },
    snapshot: () => ({ tensors: part.ema?.tensors() ?? new Map() }),
    dispose: () => part.ema?.dispose(),
  };
  return part;
}
