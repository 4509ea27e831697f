import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ParamStore, UserError, stopGradient } from '@factorgen/shared';
import { conv2d, createConv, createGroupNorm, createLinear, dense, groupNorm, swish } from './layers';

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

/** Softmax cross-entropy for training the teacher. logits: [B,classes], labels: int32 [B] -> scalar. */
export function classifierLoss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const onehot = tf.oneHot(labels, logits.shape[1]);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), onehot), 1))) as tf.Scalar;
}

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

function readModelJson(dir: string): tf.io.ModelJSON {
  const path = join(dir, 'model.json');
  if (!existsSync(path)) throw new UserError(`${path}: not found (expected a tfjs model folder)`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as tf.io.ModelJSON;
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** tf.io handler reading `dir/model.json` and its weight shards from disk (Node without tfjs-node). */
export function fileLoadHandler(dir: string): tf.io.IOHandler {
  return {
    load: async () =>
      tf.io.getModelArtifactsForJSON(readModelJson(dir), async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const file = join(dir, p);
            if (!existsSync(file)) throw new UserError(`${file}: weight shard listed in model.json is missing`);
            const b = readFileSync(file);
            buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
          }
        }
        return [specs, buffers];
      }),
  };
}

/** Options for a teacher from disk: which layer/node is the embedding, and the input range the model expects. */
export type LoadTeacherOptions = {
  /** LayersModel: layer whose output is the embedding (default: a layer named 'embedding', else the last layer's input) */
  embeddingLayer?: string;
  /** GraphModel: output node name (default: the model's first output) */
  outputNode?: string;
  /** pixel range the model was trained on (default '[-1,1]', the project's convention) */
  inputRange?: '[-1,1]' | '[0,1]';
};

/**
 * Loads a tfjs LayersModel or GraphModel folder (model.json + shards) as a FrozenTeacher.
 * Inputs are adapted to the model: rescaled to `inputRange`, resized (bilinear) to its input size,
 * gray tiled to RGB or RGB averaged to gray. LayersModel features: the last rank-4 output at each spatial
 * resolution (for the perceptual loss); GraphModel: embedding only (features = []). Rank-4 embeddings are mean-pooled.
 */
export async function loadLayersTeacher(dir: string, opts: LoadTeacherOptions = {}): Promise<LoadedTeacher> {
  const handler = fileLoadHandler(dir);
  const raw = readModelJson(dir);
  let forward: (x: tf.Tensor4D) => tf.Tensor[];
  let inputShape: (number | null)[];
  let dispose: () => void;
  if (raw.format === 'graph-model') {
    const gm = await tf.loadGraphModel(handler);
    const out = opts.outputNode ?? gm.outputs[0].name;
    inputShape = gm.inputs[0].shape ?? [null, null, null, null];
    forward = (x) => [gm.execute(x, out) as tf.Tensor];
    dispose = () => gm.dispose();
  } else {
    const lm = await tf.loadLayersModel(handler);
    lm.trainable = false; // frozen: keeps its variables out of tf.variableGrads
    let embLayer: tf.SymbolicTensor;
    if (opts.embeddingLayer) {
      embLayer = lm.getLayer(opts.embeddingLayer).output as tf.SymbolicTensor;
    } else if (lm.layers.some((l) => l.name === 'embedding')) {
      embLayer = lm.getLayer('embedding').output as tf.SymbolicTensor;
    } else {
      embLayer = lm.layers[lm.layers.length - 1].input as tf.SymbolicTensor;
    }
    const byRes = new Map<string, tf.SymbolicTensor>();
    for (const l of lm.layers) {
      if (l.getClassName() === 'InputLayer') continue;
      const o = l.output;
      if (!Array.isArray(o) && o.shape.length === 4) byRes.set(`${o.shape[1]}x${o.shape[2]}`, o);
    }
    const multi = tf.model({ inputs: lm.inputs, outputs: [embLayer, ...byRes.values()] });
    inputShape = lm.inputs[0].shape;
    forward = (x) => {
      const r = multi.apply(x) as tf.Tensor | tf.Tensor[];
      return Array.isArray(r) ? r : [r];
    };
    // layers are shared with `multi` without extra references: disposing lm frees every weight once
    dispose = () => lm.dispose();
  }
  const [, inH, inW, inC] = inputShape;
  const adapt = (x: tf.Tensor4D): tf.Tensor4D => {
    let y = x;
    if (opts.inputRange === '[0,1]') y = tf.mul(tf.add(y, 1), 0.5);
    if (inH && inW && (inH !== y.shape[1] || inW !== y.shape[2])) y = tf.image.resizeBilinear(y, [inH, inW]);
    if (inC && inC !== y.shape[3]) {
      if (inC === 3 && y.shape[3] === 1) y = tf.tile(y, [1, 1, 1, 3]);
      else if (inC === 1 && y.shape[3] === 3) y = tf.mean(y, 3, true);
      else throw new UserError(`${dir}: teacher expects ${inC} channels, images have ${y.shape[3]}`);
    }
    return y;
  };
  const run = (x: tf.Tensor4D) => {
    const [emb, ...features] = forward(adapt(x));
    const e = emb.rank === 4 ? tf.mean(emb, [1, 2]) : emb.rank === 2 ? emb : tf.reshape(emb, [emb.shape[0], -1]);
    return { embedding: stopGradient(e as tf.Tensor2D), features: features as tf.Tensor4D[] };
  };
  const probe = tf.tidy(() => run(tf.zeros([1, inH ?? 28, inW ?? 28, inC ?? 1]) as tf.Tensor4D).embedding.shape[1]);
  return { embedDim: probe, run, dispose };
}
