/** Loading a frozen teacher from a tfjs model folder on disk (model.json + weight shards). */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '@factorgen/tfjs-ext';
import { stopGradient } from '@factorgen/nn';
import type { LoadedTeacher } from '@factorgen/tokenizer';

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
