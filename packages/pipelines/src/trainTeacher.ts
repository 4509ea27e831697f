import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ParamStore, Rng, optimizerStep, initAdamState, warmupCosine, type AdamWConfig } from '@factorgen/nn';
import { assignParams, type LoadedCheckpoint, batchIndices, flipMask, gatherImages, gatherLabels, toFloat, type ImageDataset } from '@factorgen/formats';
import { hasCheckpoint, loadCheckpoint, checkFolder } from '@factorgen/io';
import { resolveCheckpointDir, runTrainer, type RunDir, type StepOutput, type Trainer, type TrainHooks, type TrainLoopResult } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { classifierLoss, createTeacher, freezeParams, teacherForward, teacherFromStore, teacherKind, type LoadedTeacher, type TeacherConfig } from '@factorgen/tokenizer';
import { loadLayersTeacher } from './loadTeacher';
import { ROTATIONS, rotateEach, rotationLabels } from '@factorgen/tokenizer';

export type TeacherTrainConfig = {
  steps: number; batch: number; lr: number; warmup: number; clip: number; adamw: AdamWConfig; seed: string; flip: boolean;
  checkpointEvery: number; logEvery: number;
};

export type TeacherTrainRequest = TrainHooks & {
  out: string; resume: boolean; config: TeacherConfig; train: TeacherTrainConfig; data: ImageDataset; test?: ImageDataset;
  /** A fresh run may replace an earlier run in `out` (only factorgen's files there). */
  overwrite?: boolean;
  /** On resume: throws when the request contradicts the checkpoint (e.g. a flag the user gave). */
  checkResume?: (ck: LoadedCheckpoint) => void;
};

/**
 * Share of the first `limit` images of `data` the teacher gets right: a classifier their labels; a rotation teacher
 * the turn of image i, which is turned by (i mod 4) x 90 degrees (every turn equally often, no randomness).
 */
export async function teacherAccuracy(store: ParamStore, cfg: TeacherConfig, data: ImageDataset, limit = 10000, batch = 250): Promise<number> {
  const n = Math.min(limit, data.n);
  const per = data.height * data.width * data.channels;
  const rotation = teacherKind(cfg) === 'rotation';
  const target = (i: number) => (rotation ? i % ROTATIONS : data.labels[i]);
  let correct = 0;
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const pred = tf.tidy(() => {
      let x = toFloat(data.images.subarray(i * per, (i + b) * per), [b, data.height, data.width, data.channels]);
      if (rotation) x = rotateEach(x, Array.from({ length: b }, (_, j) => target(i + j)));
      return tf.argMax(teacherForward(store, cfg, x).logits, 1);
    });
    const p = await pred.data();
    pred.dispose();
    for (let j = 0; j < b; j++) if (p[j] === target(i + j)) correct++;
  }
  return correct / Math.max(1, n);
}

/** The teacher's training loss on a batch: cross-entropy on the labels (classifier) or on random turns (rotation). */
export function teacherLoss(store: ParamStore, cfg: TeacherConfig, x: tf.Tensor4D, labels: ArrayLike<number>, step: number, seed: string): tf.Scalar {
  if (teacherKind(cfg) === 'rotation') {
    const ks = rotationLabels(x.shape[0], step, seed);
    return classifierLoss(teacherForward(store, cfg, rotateEach(x, ks)).logits, tf.tensor1d(ks, 'int32'));
  }
  return classifierLoss(teacherForward(store, cfg, x).logits, tf.tensor1d(Array.from(labels), 'int32'));
}

/**
 * Trains the embedded teacher (a small CNN: a classifier on the dataset's labels, or a rotation predictor that uses no
 * labels, per config.kind), checkpointed like every model (kind 'teacher'). Its embedding and feature maps then drive
 * the tokenizer's alignment and perceptual losses.
 */
export async function trainTeacher(req: TeacherTrainRequest): Promise<TrainLoopResult & { testAccuracy: number | null; checkpointDir: string }> {
  return runTrainer({ ...req, kind: 'teacher' }, (run) => teacherTrainer(run, req));
}

function teacherTrainer(run: RunDir, req: TeacherTrainRequest): Trainer<{ testAccuracy: number | null }> {
  const cfg = (run.resumed ? run.resumed.config : req.config) as TeacherConfig;
  const d = req.data;
  const rotation = teacherKind(cfg) === 'rotation';
  if (d.height !== cfg.imageSize || d.channels !== cfg.channels || (!rotation && d.classNames.length !== cfg.classes)) {
    throw new UserError(`${d.height}x${d.width}x${d.channels} with ${d.classNames.length} classes does not fit the teacher config`, { field: 'dataset', value: d.name });
  }
  if (rotation && (d.height !== d.width || cfg.classes !== ROTATIONS)) {
    throw new UserError(`needs square images and ${ROTATIONS} outputs (got ${d.height}x${d.width} images, ${cfg.classes} outputs)`, { field: 'kind', value: 'rotation' });
  }
  const prevNames = (run.resumed?.extra as { classNames?: unknown } | undefined)?.classNames;
  if (Array.isArray(prevNames) && (prevNames.length !== d.classNames.length || prevNames.some((n, i) => n !== d.classNames[i]))) {
    throw new UserError(`classes [${d.classNames.join(', ')}] differ from the run's [${prevNames.join(', ')}]`, { field: 'dataset', value: d.name });
  }
  const tc = req.train;
  const store = new ParamStore(new Rng(`${tc.seed}/teacher-init`));
  createTeacher(store, cfg);
  const opt = initAdamState();
  const step = async (s: number): Promise<StepOutput> => {
    const idx = batchIndices(d.n, tc.batch, s, tc.seed);
    const x = toFloat(gatherImages(d, idx, flipMask(tc.batch, s, tc.seed, tc.flip)), [tc.batch, d.height, d.width, d.channels]);
    const y = gatherLabels(d, idx);
    const lr = warmupCosine(s, tc.lr, tc.warmup, tc.steps);
    const { loss, gradNorm } = optimizerStep(() => teacherLoss(store, cfg, x, y, s, tc.seed), store.vars, opt, tc.adamw, lr, tc.clip);
    tf.dispose([x, gradNorm]);
    return { loss, lr };
  };
  return {
    config: cfg,
    params: store.vars,
    optimizers: [{ state: opt }],
    extra: () => ({ train: tc, dataset: d.name, classNames: d.classNames }),
    loop: { label: 'teacher', totalSteps: tc.steps, step, checkpointEvery: tc.checkpointEvery, logEvery: tc.logEvery, itemsPerStep: tc.batch, itemName: 'images' },
    finish: async (result, r) => {
      const testAccuracy = req.test ? await teacherAccuracy(store, cfg, req.test) : null;
      if (testAccuracy !== null) r.metrics.write({ step: result.stepsDone, testAccuracy });
      return { testAccuracy };
    },
    dispose: () => store.dispose(),
  };
}

/**
 * Loads a frozen teacher: a `factorgen teacher train` run/checkpoint folder, or any tfjs LayersModel/GraphModel
 * folder (model.json + weight shards).
 */
export async function loadFrozenTeacher(dir: string): Promise<LoadedTeacher> {
  checkFolder(dir, 'a `factorgen teacher train` run or a tfjs model folder');
  const ckDir = resolveCheckpointDir(dir);
  if (hasCheckpoint(ckDir)) {
    const ck = await loadCheckpoint(ckDir, 'teacher');
    const cfg = ck.config as TeacherConfig;
    const store = new ParamStore(new Rng('teacher-load'));
    createTeacher(store, cfg);
    assignParams(store.vars, ck.tensors, ckDir);
    freezeParams(store);
    return { ...teacherFromStore(store, cfg), dispose: () => store.dispose() };
  }
  if (fs.existsSync(path.join(dir, 'model.json'))) return loadLayersTeacher(dir);
  throw new UserError(`${dir}: neither a factorgen teacher checkpoint nor a tfjs model folder (no checkpoint/config.json, config.json or model.json)`);
}
