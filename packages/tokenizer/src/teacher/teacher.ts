import * as tf from '@tensorflow/tfjs';
import { ParamStore, stopGradient, conv2d, createConv, createGroupNorm, createLinear, dense, groupNorm, softmaxCrossEntropy, swish } from '@factorgen/nn';
import { UserError } from '@factorgen/tfjs-ext';

/**
 * What the tokenizer needs from a frozen teacher: for images x: [B,H,W,C] in [-1,1],
 * an image embedding [B,embedDim] (alignment) and intermediate maps [B,h_i,w_i,c_i] (perceptual loss;
 * may be empty for teachers that expose none). Caller owns the returned tensors.
 */
export interface FrozenTeacher {
  readonly embedDim: number;
  run(x: tf.Tensor4D): { embedding: tf.Tensor2D; features: tf.Tensor4D[] };
}

/** A teacher loaded from disk; dispose() frees its weights. */
export interface LoadedTeacher extends FrozenTeacher {
  dispose(): void;
}

/**
 * Embedded teacher: a small CNN. Stage i: 3x3 conv (stride 2 for i > 0) - GN - swish - 3x3 conv - GN - swish,
 * width widths[i]; global average pool; dense to embedDim (the embedding); dense to `classes` logits.
 * `kind` is what the logits are trained to predict (absent: 'classifier', checkpoints written before this field):
 * - 'classifier': the dataset's labels (supervised; classes = the dataset's classes);
 * - 'rotation': which of 4 turns by 90 degrees an image was given (RotNet, self-supervised, no labels; classes = 4;
 *   square images only).
 * Both give the same FrozenTeacher (features + embedding), so FQGAN-Triple can align two sub-codebooks to two
 * teachers of different kinds.
 */
export type TeacherKind = 'classifier' | 'rotation';
export type TeacherConfig = { imageSize: number; channels: 1 | 3; widths: number[]; embedDim: number; classes: number; normGroups: number; kind?: TeacherKind };

/** Fashion-MNIST teacher: 28 -> 14 -> 7 with widths 32/64/128, 128-d embedding, 10 classes. */
export function presetFashionTeacher(): TeacherConfig {
  return { imageSize: 28, channels: 1, widths: [32, 64, 128], embedDim: 128, classes: 10, normGroups: 8 };
}

/** 'classifier' unless the config says otherwise (configs written before `kind` are classifiers). */
export function teacherKind(cfg: TeacherConfig): TeacherKind {
  return cfg.kind ?? 'classifier';
}

/** Registers the teacher under 'teacher/' (trainable, so it can be trained first; freeze it afterwards). */
export function createTeacher(store: ParamStore, cfg: TeacherConfig): void {
  let cin: number = cfg.channels;
  cfg.widths.forEach((w, i) => {
    if (w % cfg.normGroups !== 0) throw new UserError(`teacher config: width ${w} not divisible by normGroups ${cfg.normGroups}`);
    createConv(store, `teacher/s${i}/conv1`, cin, w);
    createGroupNorm(store, `teacher/s${i}/norm1`, w);
    createConv(store, `teacher/s${i}/conv2`, w, w);
    createGroupNorm(store, `teacher/s${i}/norm2`, w);
    cin = w;
  });
  createLinear(store, 'teacher/embed', cin, cfg.embedDim);
  createLinear(store, 'teacher/logits', cfg.embedDim, cfg.classes);
}

/** x: [B,H,W,C] in [-1,1] -> stage outputs [B,H/2^i,W/2^i,widths[i]], embedding [B,embedDim], logits [B,classes]. */
export function teacherForward(
  store: ParamStore,
  cfg: TeacherConfig,
  x: tf.Tensor4D,
): { features: tf.Tensor4D[]; embedding: tf.Tensor2D; logits: tf.Tensor2D } {
  const g = cfg.normGroups;
  const features: tf.Tensor4D[] = [];
  let h = x;
  cfg.widths.forEach((_w, i) => {
    h = swish(groupNorm(store, `teacher/s${i}/norm1`, conv2d(store, `teacher/s${i}/conv1`, h, i > 0 ? 2 : 1), g));
    h = swish(groupNorm(store, `teacher/s${i}/norm2`, conv2d(store, `teacher/s${i}/conv2`, h), g));
    features.push(h);
  });
  const embedding = dense(store, 'teacher/embed', tf.mean(h, [1, 2]) as tf.Tensor2D);
  return { features, embedding, logits: dense(store, 'teacher/logits', embedding) };
}

/** Softmax cross-entropy for training the teacher (nn's softmaxCrossEntropy). logits: [B,classes], labels: int32 [B] -> scalar. */
export const classifierLoss = softmaxCrossEntropy;

/** Marks every variable in `store` non-trainable, so tf.variableGrads and ParamStore.trainable() skip it. */
export function freezeParams(store: ParamStore): void {
  for (const v of store.vars.values()) v.trainable = false;
}

/** The embedded teacher behind the FrozenTeacher contract (outputs wrapped in stopGradient: it is frozen). */
export function teacherFromStore(store: ParamStore, cfg: TeacherConfig): FrozenTeacher {
  return {
    embedDim: cfg.embedDim,
    run(x) {
      const out = teacherForward(store, cfg, x);
      // features must keep their gradient path to x (perceptual loss on recon); the embedding is a target only.
      return { embedding: stopGradient(out.embedding), features: out.features };
    },
  };
}
