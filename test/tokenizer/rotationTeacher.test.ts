import * as tf from '@tensorflow/tfjs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { defaultAdamW } from '@factorgen/nn';
import { readMetrics } from '@factorgen/train';
import { type ImageDataset } from '@factorgen/formats';
import { rot90, rotateEach, rotationLabels } from '@factorgen/tokenizer';
import { type TeacherConfig } from '@factorgen/tokenizer';
import { loadFrozenTeacher, trainTeacher, type TeacherTrainConfig } from '@factorgen/pipelines';
import { alignTargetPredict } from '@factorgen/tokenizer';
import { createTokenizer, tokenizerForward } from '@factorgen/tokenizer';
import { trainTokenizer } from '@factorgen/pipelines';
import { tinyTokenizerConfig, tinyTokenizerTrain } from '../robustness/fixtures';

let root: string;
beforeAll(async () => {
  await initBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-rotation-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/**
 * 8x8 grey images with a bright 3x3 block in one corner (class = corner) and a dimmer bar along the top edge: turning
 * such an image changes where the block and the bar are, so its turn can be read off the image.
 */
function cornerDataset(n: number): ImageDataset {
  const images = new Uint8Array(n * 64);
  const labels = new Int32Array(n);
  let s = 7;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 31;
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    labels[i] = c;
    const [y0, x0] = [[0, 0], [0, 5], [5, 0], [5, 5]][c];
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const block = y >= y0 && y < y0 + 3 && x >= x0 && x < x0 + 3;
        images[i * 64 + y * 8 + x] = (block ? 220 : y === 0 ? 120 : 20) + rand();
      }
    }
  }
  return { name: 'corners', images, n, height: 8, width: 8, channels: 1, labels, classNames: ['tl', 'tr', 'bl', 'br'] };
}

const teacherTrain = (steps: number): TeacherTrainConfig => ({
  steps, batch: 16, lr: 5e-3, warmup: 2, clip: 1, adamw: { ...defaultAdamW, weightDecay: 0 }, seed: 'rot', flip: false, checkpointEvery: 1000, logEvery: 1,
});
const rotationCfg: TeacherConfig = { imageSize: 8, channels: 1, widths: [8, 16], embedDim: 8, classes: 4, normGroups: 4, kind: 'rotation' };
const classifierCfg: TeacherConfig = { imageSize: 8, channels: 1, widths: [8, 16], embedDim: 6, classes: 4, normGroups: 4 };

describe('rot90 / rotateEach', () => {
  it('turns counter-clockwise by k x 90 degrees (hand-computed 2x2 and 3x3), per image', () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const got = [0, 1, 2, 3, 4, -1].map((k) => Array.from(rot90(x, k).dataSync()));
    // [[1,2],[3,4]] turned left once: [[2,4],[1,3]]; twice: [[4,3],[2,1]]; three times (= once clockwise): [[3,1],[4,2]]
    expect(got).toEqual([[1, 2, 3, 4], [2, 4, 1, 3], [4, 3, 2, 1], [3, 1, 4, 2], [1, 2, 3, 4], [3, 1, 4, 2]]);
    const y = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    expect(Array.from(rot90(y, 1).dataSync())).toEqual([3, 6, 9, 2, 5, 8, 1, 4, 7]);
    // two images, turned 1 and 2 times
    const two = tf.concat([x, tf.mul(x, 10)], 0) as tf.Tensor4D;
    expect(Array.from(rotateEach(two, [1, 2]).dataSync())).toEqual([2, 4, 1, 3, 40, 30, 20, 10]);
    expect(() => rot90(tf.zeros([1, 2, 3, 1]) as tf.Tensor4D, 1)).toThrow('rot90: images must be square (got 2x3)');
    const labels = rotationLabels(64, 5, 'seed');
    expect(labels).toEqual(rotationLabels(64, 5, 'seed')); // a function of (seed, step)
    expect(new Set(labels).size).toBe(4);
    tf.dispose([x, y, two]);
  });
});

describe('rotation teacher (self-supervised) and FQGAN-Triple with two teachers of different kinds', () => {
  it('trains: the rotation loss falls from ln 4 and it reads the turn of the training images', async () => {
    const data = cornerDataset(32);
    const out = path.join(root, 'rot');
    const r = await trainTeacher({ out, resume: false, config: rotationCfg, data, test: data, train: teacherTrain(60) });
    const losses = readMetrics(path.join(out, 'metrics.jsonl')).filter((m) => typeof m.loss === 'number').map((m) => m.loss as number);
    expect(losses[0]).toBeGreaterThan(1.2); // about ln 4 = 1.386 at the start
    const last = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(last).toBeLessThan(0.25 * losses[0]);
    expect(r.testAccuracy).toBeGreaterThanOrEqual(0.9); // turn of image i = i mod 4
    // the frozen teacher serves features and an embedding, like the classifier
    const t = await loadFrozenTeacher(out);
    const o = tf.tidy(() => {
      const res = t.run(tf.zeros([2, 8, 8, 1]) as tf.Tensor4D);
      return { e: res.embedding.shape, f: res.features.map((f) => f.shape) };
    });
    expect(o).toEqual({ e: [2, 8], f: [[2, 8, 8, 8], [2, 4, 4, 16]] });
    t.dispose();
  }, 300_000);

  it("each alignment target's loss is against its own teacher (hand-computed InfoNCE), and a tokenizer with both trains", async () => {
    const data = cornerDataset(32);
    const rotDir = path.join(root, 'rot2');
    const clsDir = path.join(root, 'cls');
    await trainTeacher({ out: rotDir, resume: false, config: rotationCfg, data, train: teacherTrain(4) });
    await trainTeacher({ out: clsDir, resume: false, config: classifierCfg, data, train: teacherTrain(4) });
    const rotation = await loadFrozenTeacher(rotDir);
    const classifier = await loadFrozenTeacher(clsDir);
    // sub-codebook 0 -> teacher 0 (the classifier, 6-d), sub-codebook 1 -> teacher 1 (rotation, 8-d), different weights
    const cfg = tinyTokenizerConfig({
      alignTargets: [
        { subCodebook: 0, teacher: 0, teacherDim: 6, weight: 0.5, layers: 1, heads: 2 },
        { subCodebook: 1, teacher: 1, teacherDim: 8, weight: 0.25, layers: 1, heads: 2 },
      ],
    });
    const tok = createTokenizer(cfg, 'triple');
    const x = tf.tidy(() => tf.sub(tf.div(tf.tensor4d(data.images.slice(0, 6 * 64), [6, 8, 8, 1], 'float32'), 127.5), 1)) as tf.Tensor4D;
    const got = tf.tidy(() => {
      const f = tokenizerForward(tok, x, { teachers: [classifier, rotation] });
      return {
        align: f.losses.align.dataSync()[0],
        p0: alignTargetPredict(tok.params, cfg, 0, f.quantizedSub[0]).arraySync() as number[][],
        p1: alignTargetPredict(tok.params, cfg, 1, f.quantizedSub[1]).arraySync() as number[][],
        e0: classifier.run(x).embedding.arraySync() as number[][],
        e1: rotation.run(x).embedding.arraySync() as number[][],
      };
    });
    // FQGAN's one-directional InfoNCE on exp(cos), by hand: -mean_i log(exp(c_ii) / sum_j exp(c_ij))
    const unit = (v: number[]) => v.map((u) => u / Math.hypot(...v));
    const nce = (p: number[][], t: number[][]) => {
      const P = p.map(unit);
      const T = t.map(unit);
      const c = P.map((pi) => T.map((tj) => pi.reduce((s, u, k) => s + u * tj[k], 0)));
      return -c.reduce((s, row, i) => s + row[i] - Math.log(row.reduce((a, v) => a + Math.exp(v), 0)), 0) / p.length;
    };
    expect(got.p0[0].length).toBe(6);
    expect(got.p1[0].length).toBe(8);
    const own = 0.5 * nce(got.p0, got.e0) + 0.25 * nce(got.p1, got.e1);
    expect(got.align).toBeCloseTo(own, 5);
    // and not the other pairing (the widths differ, so a crossed pairing would also fail alignTargetLoss's shape check)
    expect(Math.abs(got.align - (0.5 * nce(got.p1.map((r) => r.slice(0, 6)), got.e0) + 0.25 * nce(got.p0.map((r) => [...r, 0, 0]), got.e1)))).toBeGreaterThan(1e-3);
    x.dispose();
    tok.params.dispose();

    // a run with both targets: trains, logs a finite alignment loss every step, and the total loss falls
    const out = path.join(root, 'triple');
    await trainTokenizer({
      out, resume: false, config: cfg, data, teachers: [classifier, rotation],
      train: tinyTokenizerTrain({ steps: 12, batch: 8, lr: 3e-3, flip: false }),
    });
    const m = readMetrics(path.join(out, 'metrics.jsonl')).filter((r) => typeof r.align === 'number');
    expect(m.length).toBe(12);
    expect(m.every((r) => Number.isFinite(r.align as number) && (r.align as number) > 0)).toBe(true);
    const mean = (rs: typeof m) => rs.reduce((a, r) => a + (r.loss as number), 0) / rs.length;
    expect(mean(m.slice(-3))).toBeLessThan(mean(m.slice(0, 3)));
    rotation.dispose();
    classifier.dispose();
  }, 300_000);
});
