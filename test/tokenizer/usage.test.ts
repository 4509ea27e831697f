import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { CodeHistogram, DeviceCodeHistogram, usageStats } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('CodeHistogram', () => {
  it('counts per sub-codebook from [...,K] indices: usage and perplexity', () => {
    const h = new CodeHistogram([4, 2]);
    // K = 2: sub-codebook 0 sees 0,0,1,1 ; sub-codebook 1 sees 1,1,1,1
    h.add(Int32Array.from([0, 1, 0, 1, 1, 1, 1, 1]));
    expect(h.usage()).toEqual([0.5, 0.5]);
    const p = h.perplexity();
    expect(p[0]).toBeCloseTo(2, 10); // two codes, equally often
    expect(p[1]).toBeCloseTo(1, 10);
    expect(h.unused(0)).toEqual([2, 3]);
    h.reset();
    expect(h.usage()).toEqual([0, 0]);
    expect(h.perplexity()).toEqual([0, 0]);
  });

  it('with a window, only the last N batches count', () => {
    const h = new CodeHistogram([3], 2);
    h.add(new Int32Array([0, 0]));
    h.add(new Int32Array([1]));
    expect(h.usage()).toBeCloseTo(2 / 3, 10);
    h.add(new Int32Array([2, 2, 2])); // evicts the first batch
    expect(Array.from(h.counts[0])).toEqual([0, 1, 3]);
    expect(h.unused(0)).toEqual([0]);
    // perplexity of counts (1, 3): exp(-(1/4 ln 1/4 + 3/4 ln 3/4))
    expect(h.perplexity()[0]).toBeCloseTo(Math.exp(-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75))), 10);
  });

  it('rejects out-of-range codes and wrong K', () => {
    const h = new CodeHistogram([4, 2]);
    expect(() => h.add(new Int32Array([0, 2]))).toThrow('CodeHistogram.add: index 2 out of range for sub-codebook 1 (size 2)');
    expect(() => h.add(new Int32Array([0, 1, 1]))).toThrow('CodeHistogram.add: 3 indices not a multiple of K 2');
    expect(h.usage()).toEqual([0, 0]); // a rejected batch counts nothing
  });

  it('usageStats is the one-shot form', () => {
    expect(usageStats(new Int32Array([0, 1, 2, 3]), [4])).toEqual([{ used: 1, perplexity: expect.closeTo(4, 10) }]);
  });
});

describe('DeviceCodeHistogram (counted on the device, read on demand)', () => {
  const batches = [[0, 1, 0, 1], [1, 0], [2, 0, 2, 1], [0, 0], [2, 1, 2, 1, 1, 0]]; // pairs (sub-codebook 0, 1), sizes [3, 2]

  it('reads back exactly the state of the host histogram fed the same batches, with and without a window', async () => {
    for (const window of [0, 2]) {
      const host = new CodeHistogram([3, 2], window);
      const dev = new DeviceCodeHistogram([3, 2], window);
      const live = tf.memory().numTensors;
      for (const b of batches) {
        host.add(Int32Array.from(b));
        const t = tf.tensor2d(b, [b.length / 2, 2], 'int32');
        dev.add(t);
        t.dispose();
        expect((await dev.read()).exportState()).toEqual(host.exportState());
      }
      expect(tf.memory().numTensors - live).toBe(window === 0 ? 0 : window); // the counts tensor is replaced; the window's batches are kept
      dev.dispose();
    }
  });

  it('importState restores a saved state that then keeps sliding like the original; a misfit is refused', async () => {
    const host = new CodeHistogram([3, 2], 2);
    for (const b of batches.slice(0, 3)) host.add(Int32Array.from(b));
    const dev = new DeviceCodeHistogram([3, 2], 2);
    expect(dev.importState(host.exportState())).toBe(true);
    expect((await dev.read()).exportState()).toEqual(host.exportState());
    const t = tf.tensor2d([0, 0], [1, 2], 'int32');
    dev.add(t);
    t.dispose();
    host.add(Int32Array.from([0, 0]));
    expect((await dev.read()).exportState()).toEqual(host.exportState());
    expect(dev.importState({ ...host.exportState(), counts: new Int32Array(4) })).toBe(false);
    expect((await dev.read()).usage()).toEqual([0, 0]);
    const bad = tf.zeros([2, 3], 'int32');
    expect(() => dev.add(bad)).toThrow('CodeHistogram.add: last axis 3 != K 2');
    bad.dispose();
    dev.dispose();
  });
});
