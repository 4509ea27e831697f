import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../packages/shared/src/backend';
import { CodeHistogram, usageStats } from '../../packages/tokenizer/src/usage';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('CodeHistogram', () => {
  it('counts per sub-codebook from [...,K] indices: usage and perplexity', () => {
    const h = new CodeHistogram([4, 2]);
    // K = 2: sub-codebook 0 sees 0,0,1,1 ; sub-codebook 1 sees 1,1,1,1
    const t = tf.tensor3d([0, 1, 0, 1, 1, 1, 1, 1], [2, 2, 2], 'int32');
    h.add(t);
    t.dispose();
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
    const t = tf.zeros([2, 3], 'int32');
    expect(() => h.add(t)).toThrow('CodeHistogram.add: last axis 3 != K 2');
    t.dispose();
    expect(h.usage()).toEqual([0, 0]); // a rejected batch counts nothing
  });

  it('usageStats is the one-shot form', () => {
    expect(usageStats(new Int32Array([0, 1, 2, 3]), [4])).toEqual([{ used: 1, perplexity: expect.closeTo(4, 10) }]);
  });
});
