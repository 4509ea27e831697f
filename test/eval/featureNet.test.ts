import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParamStore, Rng } from '@factorgen/nn';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { accuracy, argmaxRows, PSNR_CAP_DB, conv3x3Same, createFeatureNet, extractFeatures, featureForward, trainFeatureNet } from '@factorgen/eval';
import { evalRecon, evalSamples, realFloor, getFeatureNet } from '@factorgen/pipelines';
import type { ImageDataset } from '@factorgen/formats';
import type { FeatureNetConfig } from '@factorgen/eval';

/**
 * 12x12 grey images of three classes with random phase and noise: horizontal stripes, vertical stripes, a centred blob.
 * Left-right flips keep every class.
 */
function synthetic(n: number, seed: string): ImageDataset {
  const rng = new Rng(seed);
  const h = 12;
  const images = new Uint8Array(n * h * h);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % 3;
    labels[i] = label;
    const phase = rng.int(4);
    const r = 2 + rng.next() * 3;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < h; x++) {
        let v: number;
        if (label === 0) v = (y + phase) % 4 < 2 ? 200 : 50;
        else if (label === 1) v = (x + phase) % 4 < 2 ? 200 : 50;
        else v = (y - 5.5) ** 2 + (x - 5.5) ** 2 < r * r ? 200 : 50;
        images[(i * h + y) * h + x] = Math.max(0, Math.min(255, Math.round(v + 40 * rng.normal())));
      }
  }
  return { name: seed, images, n, height: h, width: h, channels: 1, labels, classNames: ['horizontal', 'vertical', 'blob'] };
}

const tiny: FeatureNetConfig = { height: 12, width: 12, channels: 1, classes: 3, widths: [8, 16], blocks: [1], featureDim: 16, groups: 4 };

beforeAll(async () => {
  // The net's convs differentiate through forward Conv2D only (conv3x3Same), which wasm runs fast.
  await initBackend('wasm');
});

describe('featureForward', () => {
  it('gives features [B, D] and logits [B, K], and an image does not depend on its batch (no batch norm)', () => {
    const store = new ParamStore(new Rng('fwd'));
    createFeatureNet(store, tiny);
    const before = tf.memory().numTensors;
    const ds = synthetic(5, 'fwd-data');
    const [batched, alone] = tf.tidy(() => {
      const x = tf.tensor4d(Float32Array.from(ds.images, (v) => v / 127.5 - 1), [5, 12, 12, 1]);
      const { features, logits } = featureForward(store, tiny, x);
      expect(features.shape).toEqual([5, 16]);
      expect(logits.shape).toEqual([5, 3]);
      return [features.arraySync()[2], featureForward(store, tiny, tf.slice(x, [2, 0, 0, 0], [1, 12, 12, 1])).features.arraySync()[0]];
    });
    alone.forEach((v, j) => expect(v).toBeCloseTo(batched[j], 5));
    expect(tf.memory().numTensors).toBe(before);
    store.dispose();
  });

  it("conv3x3Same's hand-written gradient equals the cpu backend's built-in conv2d gradient", async () => {
    const rng = new Rng('convgrad');
    const xs = Float32Array.from({ length: 2 * 6 * 5 * 3 }, () => rng.normal());
    const ws = Float32Array.from({ length: 9 * 3 * 4 }, () => rng.normal());
    const rs = Float32Array.from({ length: 2 * 6 * 5 * 4 }, () => rng.normal());
    const grads = (f: (a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor4D): Float32Array[] =>
      tf.tidy(() => {
        const r = tf.tensor4d(rs, [2, 6, 5, 4]);
        const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D), r));
        return tf.grads(loss)([tf.tensor4d(xs, [2, 6, 5, 3]), tf.tensor4d(ws, [3, 3, 3, 4])]).map((g) => g.dataSync() as Float32Array);
      });
    const before = tf.memory().numTensors;
    const mine = grads(conv3x3Same); // on wasm
    expect(tf.memory().numTensors).toBe(before);
    await tf.setBackend('cpu');
    const ref = grads((a, b) => tf.conv2d(a, b, 1, 'same'));
    await tf.setBackend('wasm');
    for (let i = 0; i < 2; i++) ref[i].forEach((v, j) => expect(mine[i][j]).toBeCloseTo(v, 4));
  });
});

describe('trainFeatureNet + evaluation', () => {
  const train = synthetic(240, 'train');
  const test = synthetic(90, 'test');
  let cacheDir = '';
  beforeAll(() => {
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'featnet-'));
  });
  afterAll(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

  it('learns the tiny task, caches the weights, reloads them identically, and scores real vs real as perfect', async () => {
    const losses: number[] = [];
    const liveTensors: number[] = [];
    const opts = {
      steps: 25,
      batch: 24,
      lr: 3e-3,
      seed: 7,
      config: tiny,
      logEvery: 1,
      onStep: (s: { loss: number }) => {
        losses.push(s.loss);
        liveTensors.push(tf.memory().numTensors);
      },
    };
    const net = await getFeatureNet(cacheDir, train, opts);
    // No tensor leaks per step (after step 1 has created the optimizer moments).
    expect(liveTensors[liveTensors.length - 1]).toBe(liveTensors[1]);
    expect(net.fromCache).toBe(false);
    expect(losses).toHaveLength(25);
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(losses[0]).toBeGreaterThan(0.9); // ~ln 3 = 1.10 at the start
    expect(last).toBeLessThan(0.5 * losses[0]);
    const before = tf.memory().numTensors;
    const { features, logits } = await extractFeatures(net, test);
    const testAcc = accuracy(argmaxRows(logits, test.n, 3), test.labels);
    expect(testAcc).toBeGreaterThan(0.85);

    // Real test set against itself: FID 0, precision = recall = 1, class accuracy = the classifier's accuracy.
    const self = await evalSamples(test, test, net);
    expect(self.fid).toBeLessThan(1e-6);
    expect(self.precision).toBe(1);
    expect(self.recall).toBe(1);
    expect(self.classAccuracy).toBeCloseTo(testAcc, 12);
    expect(self.n).toBe(90);
    const floor = await realFloor(train, test, net);
    expect(floor.fid).toBeGreaterThan(0);
    const recon = await evalRecon(test, test, net);
    expect(recon).toEqual({ rfid: expect.any(Number), psnrGlobalMse: Infinity, psnrPerImageMean: PSNR_CAP_DB, ssim: 1 });
    expect(recon.rfid).toBeLessThan(1e-6);
    // A different class's images are far in feature space.
    const shifted = { ...test, labels: test.labels.map((l) => (l + 1) % 3) };
    expect((await evalSamples(shifted, test, net)).classAccuracy).toBeLessThan(0.15);
    expect(tf.memory().numTensors).toBe(before);
    net.store.dispose();

    // Loading holds exactly the tensors a freshly created net holds.
    const base = tf.memory().numTensors;
    const fresh = new ParamStore(new Rng('fresh'));
    createFeatureNet(fresh, tiny);
    const createdCost = tf.memory().numTensors - base;
    fresh.dispose();
    const beforeLoad = tf.memory().numTensors;

    const again = await getFeatureNet(cacheDir, train, { ...opts, onStep: () => losses.push(-1) });
    expect(again.fromCache).toBe(true);
    expect(again.dir).toBe(net.dir);
    expect(losses).toHaveLength(25); // nothing retrained
    expect(tf.memory().numTensors - beforeLoad).toBe(createdCost);
    expect((await extractFeatures(again, test)).features).toEqual(features);
    again.store.dispose();
    expect(fs.readdirSync(cacheDir)).toHaveLength(1);
  });

  it('trains deterministically for a seed', async () => {
    const small = synthetic(48, 'det');
    const run = async () => {
      const net = await trainFeatureNet(small, { steps: 3, batch: 16, lr: 3e-3, seed: 3, config: tiny });
      const w = (await net.store.get('featnet/head/w').data()).slice();
      net.store.dispose();
      return w;
    };
    expect(await run()).toEqual(await run());
  });
});
