import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { ParamStore, conv2d, createConv, createGroupNorm, groupNorm } from '@factorgen/nn';
import { Rng } from '@factorgen/nn';
import { attnBlock, createAttnBlock, createDownsample, createResBlock, createUpsample, downsample, resBlock, upsample } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('layers', () => {
  it('groupNorm normalizes each (sample, group) over H, W and the group channels', () => {
    const store = new ParamStore(new Rng('gn'));
    createGroupNorm(store, 'gn', 4);
    store.get('gn/gamma').assign(tf.tensor1d([1, 2, 1, 1]));
    store.get('gn/beta').assign(tf.tensor1d([0, 0, 0, 0.5]));
    const rng = new Rng('x');
    const [B, H, W, C, G] = [2, 3, 2, 4, 2];
    const data = Array.from({ length: B * H * W * C }, () => rng.normal() * 3 + 1);
    const got = tf.tidy(() => groupNorm(store, 'gn', tf.tensor4d(data, [B, H, W, C]), G).dataSync().slice());
    const gamma = [1, 2, 1, 1], beta = [0, 0, 0, 0.5];
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < G; g++) {
        const idx: number[] = [];
        for (let p = 0; p < H * W; p++) for (let c = g * 2; c < g * 2 + 2; c++) idx.push((b * H * W + p) * C + c);
        const mean = idx.reduce((s, i) => s + data[i], 0) / idx.length;
        const variance = idx.reduce((s, i) => s + (data[i] - mean) ** 2, 0) / idx.length;
        for (const i of idx) {
          const c = i % C;
          expect(got[i]).toBeCloseTo(((data[i] - mean) / Math.sqrt(variance + 1e-6)) * gamma[c] + beta[c], 4);
        }
      }
    }
    store.dispose();
  });

  it('blocks keep or change shapes as documented and leak nothing', () => {
    const store = new ParamStore(new Rng('blocks'));
    createConv(store, 'c', 3, 5);
    createResBlock(store, 'r', 4, 8);
    createResBlock(store, 'r2', 8, 8);
    createAttnBlock(store, 'a', 8);
    createDownsample(store, 'd', 8);
    createUpsample(store, 'u', 8);
    expect(store.has('r/skip/w')).toBe(true);
    expect(store.has('r2/skip/w')).toBe(false);
    const before = tf.memory().numTensors;
    const shapes = tf.tidy(() => {
      const x = tf.randomNormal([2, 6, 6, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
      const r = resBlock(store, 'r', x, 2);
      const a = attnBlock(store, 'a', r, 2);
      return [
        conv2d(store, 'c', tf.zeros([1, 7, 7, 3]) as tf.Tensor4D, 2).shape,
        r.shape, resBlock(store, 'r2', r, 4).shape, a.shape,
        downsample(store, 'd', a).shape, upsample(store, 'u', a).shape,
      ];
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(shapes).toEqual([[1, 4, 4, 5], [2, 6, 6, 8], [2, 6, 6, 8], [2, 6, 6, 8], [2, 3, 3, 8], [2, 12, 12, 8]]);
    store.dispose();
  });

  it('attention mixes positions within a sample only', () => {
    const store = new ParamStore(new Rng('attn'));
    createAttnBlock(store, 'a', 4);
    const [changedOther, changedSame] = tf.tidy(() => {
      const x = tf.randomNormal([2, 2, 2, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
      // bump only sample 0, position (1,1), channel 3
      const bump = new Float32Array(32);
      bump[(0 * 4 + 1 * 2 + 1) * 4 + 3] = 3;
      const bumped = tf.add(x, tf.tensor4d(bump, [2, 2, 2, 4])) as tf.Tensor4D;
      const y0 = attnBlock(store, 'a', x, 2);
      const y1 = attnBlock(store, 'a', bumped, 2);
      const d = tf.abs(tf.sub(y0, y1));
      return [tf.max(d.slice([1], [1])).dataSync()[0], tf.max(d.slice([0, 0, 0], [1, 1, 1])).dataSync()[0]];
    });
    expect(changedOther).toBe(0); // sample 1 untouched
    expect(changedSame).toBeGreaterThan(0); // another position of sample 0 sees the change
    store.dispose();
  });
});
