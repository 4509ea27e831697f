import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { ParamStore, infoNCE } from '@factorgen/nn';
import { Rng } from '@factorgen/nn';
import { dLossHinge, createDiscriminator, discriminatorForward, gLossHinge } from '@factorgen/tokenizer';
import { featureDistance, perceptualLoss } from '@factorgen/tokenizer';
import { classifierLoss, createTeacher, freezeParams, teacherForward, teacherFromStore, type TeacherConfig } from '@factorgen/tokenizer';
import { loadLayersTeacher } from '@factorgen/pipelines';

let root: string;
beforeAll(async () => {
  await initBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-teacher-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const num = (t: tf.Tensor): number => t.dataSync()[0];
const tcfg: TeacherConfig = { imageSize: 8, channels: 1, widths: [4, 8], embedDim: 6, classes: 3, normGroups: 2 };

describe('embedded teacher', () => {
  it('returns stage features, embedding and logits; freezing removes it from variableGrads', () => {
    const store = new ParamStore(new Rng('teacher'));
    createTeacher(store, tcfg);
    const x = tf.randomUniform([2, 8, 8, 1], -1, 1, 'float32', 1) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const shapes = tf.tidy(() => {
      const out = teacherForward(store, tcfg, x);
      const loss = classifierLoss(out.logits, tf.tensor1d([0, 2], 'int32'));
      return { f: out.features.map((t) => t.shape), e: out.embedding.shape, l: out.logits.shape, loss: num(loss) };
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(shapes.f).toEqual([[2, 8, 8, 4], [2, 4, 4, 8]]);
    expect(shapes.e).toEqual([2, 6]);
    expect(shapes.l).toEqual([2, 3]);
    expect(shapes.loss).toBeGreaterThan(0);
    expect(store.trainable().size).toBe(store.vars.size);
    freezeParams(store);
    expect(store.trainable().size).toBe(0);
    // perceptual loss through the frozen teacher: 0 for identical images, positive otherwise, gradient reaches the image
    const teacher = teacherFromStore(store, tcfg);
    const recon = tf.variable(tf.add(x, 0.3), true, 'teacher-test-recon');
    const same = tf.tidy(() => num(perceptualLoss(teacher, x, x)));
    const { value, grads } = tf.variableGrads(() => perceptualLoss(teacher, x, recon as unknown as tf.Tensor4D));
    expect(same).toBe(0);
    expect(num(value)).toBeGreaterThan(0);
    expect(Object.keys(grads)).toEqual(['teacher-test-recon']); // no teacher parameter gets a gradient
    tf.dispose([value, ...Object.values(grads), recon, x]);
    store.dispose();
  });
});

describe('featureDistance', () => {
  it('is the channel-normalized squared distance, summed over channels, averaged over positions and layers', () => {
    const got = tf.tidy(() =>
      num(featureDistance(
        [tf.tensor4d([3, 4, 1, 0], [1, 1, 2, 2]), tf.tensor4d([2], [1, 1, 1, 1])],
        [tf.tensor4d([4, 3, 0, 5], [1, 1, 2, 2]), tf.tensor4d([-1], [1, 1, 1, 1])],
      )),
    );
    // layer 1: pos0 (0.6,0.8) vs (0.8,0.6): 0.04+0.04 = 0.08; pos1 (1,0) vs (0,1): 2 -> mean 1.04; layer 2: (1 - -1)^2 = 4
    expect(got).toBeCloseTo((1.04 + 4) / 2, 6);
  });
});

describe('infoNCE', () => {
  it('equals the symmetric cross-entropy of cosine logits over the batch', () => {
    const T = 0.5;
    const got = tf.tidy(() => num(infoNCE(tf.tensor2d([[2, 0], [1, 1]]), tf.tensor2d([[1, 0], [0, 3]]), T)));
    const s = Math.SQRT1_2;
    const cos = [[1, 0], [s, s]]; // pred i vs teacher j
    const ce = (row: number[], i: number) => -(row[i] / T - Math.log(row.reduce((a, v) => a + Math.exp(v / T), 0)));
    const rows = (ce(cos[0], 0) + ce(cos[1], 1)) / 2;
    const cols = (ce([cos[0][0], cos[1][0]], 0) + ce([cos[0][1], cos[1][1]], 1)) / 2;
    expect(got).toBeCloseTo((rows + cols) / 2, 5);
  });
});

describe('discriminator', () => {
  it('maps images to patch logits and computes hinge losses', () => {
    const store = new ParamStore(new Rng('disc'));
    const acfg = { weight: 0.1, startStep: 0, baseChannels: 4, layers: 2 };
    createDiscriminator(store, acfg, 1);
    const shape = tf.tidy(() => discriminatorForward(store, acfg, tf.zeros([3, 28, 28, 1]) as tf.Tensor4D).shape);
    expect(shape).toEqual([3, 7, 7, 1]);
    const [d, g] = tf.tidy(() => [
      num(dLossHinge(tf.tensor1d([2, 0.5]), tf.tensor1d([-3, 0]))),
      num(gLossHinge(tf.tensor1d([1, -3]))),
    ]);
    // real: relu(1-2)=0, relu(0.5)=0.5 -> 0.25 ; fake: relu(-2)=0, relu(1)=1 -> 0.5 ; 0.5*(0.25+0.5)
    expect(d).toBeCloseTo(0.375, 6);
    expect(g).toBeCloseTo(1, 6);
    store.dispose();
  });
});

describe('loadLayersTeacher', () => {
  it('loads a LayersModel folder from disk and exposes its embedding layer and per-resolution features', async () => {
    const dir = path.join(root, 'layers');
    fs.mkdirSync(dir);
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 3, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
        tf.layers.globalAveragePooling2d({}),
        tf.layers.dense({ units: 5, name: 'embedding' }),
        tf.layers.dense({ units: 2 }),
      ],
    });
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
        const json = {
          modelTopology: a.modelTopology, format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy,
          weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
        };
        fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const x = tf.randomUniform([2, 8, 8, 1], -1, 1, 'float32', 2) as tf.Tensor4D;
    const want = tf.tidy(() => {
      const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer('embedding').output as tf.SymbolicTensor });
      return (sub.predict(x) as tf.Tensor).dataSync().slice();
    });
    model.dispose();
    const before = tf.memory().numTensors;
    const teacher = await loadLayersTeacher(dir);
    expect(teacher.embedDim).toBe(5);
    const got = tf.tidy(() => {
      const out = teacher.run(x);
      return { emb: out.embedding.dataSync().slice(), shapes: out.features.map((f) => f.shape) };
    });
    expect(got.shapes).toEqual([[2, 8, 8, 3], [2, 4, 4, 4]]);
    expect(Array.from(got.emb).map((v, i) => Math.abs(v - want[i])).every((d) => d < 1e-5)).toBe(true);
    // frozen: with every trainable variable in play, only the input gets a gradient (through the features)
    const xv = tf.variable(x, true, 'loaded-teacher-x');
    const { value, grads } = tf.variableGrads(() => tf.sum(teacher.run(xv as unknown as tf.Tensor4D).features[1]) as tf.Scalar);
    expect(Object.keys(grads)).toEqual(['loaded-teacher-x']);
    tf.dispose([value, ...Object.values(grads), xv]);
    teacher.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('adapts images to the model: [0,1] range, resize to its input size, gray tiled to RGB', async () => {
    const dir = path.join(root, 'rgb');
    fs.mkdirSync(dir);
    const model = tf.sequential({
      layers: [tf.layers.flatten({ inputShape: [4, 4, 3] }), tf.layers.dense({ units: 3, name: 'embedding' }), tf.layers.dense({ units: 2 })],
    });
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from(a.weightData as ArrayBuffer));
        fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ modelTopology: a.modelTopology, format: a.format, weightsManifest: [{ paths: ['w.bin'], weights: a.weightSpecs }] }));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const x = tf.randomUniform([2, 8, 8, 1], -1, 1, 'float32', 3) as tf.Tensor4D;
    const want = tf.tidy(() => {
      const adapted = tf.tile(tf.image.resizeBilinear(tf.mul(tf.add(x, 1), 0.5) as tf.Tensor4D, [4, 4]), [1, 1, 1, 3]);
      const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer('embedding').output as tf.SymbolicTensor });
      return (sub.predict(adapted) as tf.Tensor).dataSync().slice();
    });
    model.dispose();
    const teacher = await loadLayersTeacher(dir, { inputRange: '[0,1]' });
    const got = tf.tidy(() => teacher.run(x).embedding.dataSync().slice());
    expect(Array.from(got).map((v, i) => Math.abs(v - want[i])).every((d) => d < 1e-5)).toBe(true);
    teacher.dispose();
    x.dispose();
  });

  it('names the missing file', async () => {
    await expect(loadLayersTeacher(path.join(root, 'nope'))).rejects.toThrow(`${path.join(root, 'nope', 'model.json')}: not found`);
  });
});
