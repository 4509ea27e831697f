import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@factorgen/nn';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { linearProbe } from '@factorgen/eval';
import { createTokenizer, pooledSubCodes, quantizerDefaults, swapSubCodebook, lookupSub, type TokenizerConfig } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('cpu');
});

/** n points of `classes` Gaussian blobs in `dim` dims, the class in feature 0's sign pattern; feature 1 pure noise. */
function blobs(n: number, seed: string): { x: Float32Array; y: Int32Array } {
  const rng = new Rng(seed);
  const y = Int32Array.from({ length: n }, (_v, i) => i % 3);
  const x = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    x[i * 2] = [-4, 0, 4][y[i]] + 0.3 * rng.normal();
    x[i * 2 + 1] = 5 * rng.normal();
  }
  return { x, y };
}

const column = (d: { x: Float32Array; y: Int32Array }, j: number) => ({ x: Float32Array.from({ length: d.y.length }, (_v, i) => d.x[i * 2 + j]), y: d.y });

describe('linearProbe', () => {
  it('separates a tiny linearly separable set perfectly, and the noise feature alone is near chance', () => {
    const train = blobs(90, 'train');
    const test = blobs(60, 'test');
    const before = tf.memory().numTensors;
    expect(linearProbe(train, test, 2, 3)).toEqual({ testAccuracy: 1, trainAccuracy: 1 });
    expect(linearProbe(column(train, 0), column(test, 0), 1, 3).testAccuracy).toBe(1);
    const noise = linearProbe(column(train, 1), column(test, 1), 1, 3).testAccuracy;
    expect(noise).toBeLessThan(0.6);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('token probes', () => {
  const cfg: TokenizerConfig = {
    version: 2, factorize: 'projection', branchBlocks: 1, alignTargets: [], imageSize: 4, channels: 1, baseChannels: 2, channelMult: [1, 2], blocksPerLevel: 1, attention: false, normGroups: 1, latentChannels: 2,
    quantizer: { ...quantizerDefaults('fq', [{ size: 4, dim: 2 }, { size: 5, dim: 3 }]), disentangleWeight: 0 }, perceptualWeight: 0,
  };

  it('pooledSubCodes is the mean over positions of each sub-codebook\'s normalized code vectors', async () => {
    const tok = createTokenizer(cfg, 'probe');
    // 2 images, 2x2 grid, K = 2: position-major [N, h*w, K]
    const tokens = Int32Array.from([0, 4, 1, 3, 2, 2, 3, 1, 1, 0, 1, 0, 1, 0, 1, 0]);
    const got = await pooledSubCodes(tok, tokens, 2, 1);
    const want = tf.tidy(() => {
      const t = tf.tensor4d(tokens, [2, 2, 2, 2], 'int32');
      return [0, 1].map((k) => Array.from(tf.mean(lookupSub(tok.params, k, tf.unstack(t, 3)[k] as tf.Tensor3D), [1, 2]).dataSync()));
    });
    expect(Array.from(got[0]).map((v, i) => v - want[0][i]).every((d) => Math.abs(d) < 1e-6)).toBe(true);
    expect(Array.from(got[1]).map((v, i) => v - want[1][i]).every((d) => Math.abs(d) < 1e-6)).toBe(true);
    // image 2 uses one code per sub-codebook everywhere: its pooled code is that code's unit vector
    const norm = Math.hypot(...Array.from(got[1].subarray(3, 6)));
    expect(norm).toBeCloseTo(1, 5);
    tok.params.dispose();
  });

  it('swapSubCodebook takes sub-codebook k from the fixed map and the rest from the varied one', () => {
    const fixed = Int32Array.from([1, 2, 3, 4, 5, 6]);
    const varied = Int32Array.from([10, 20, 30, 40, 50, 60]);
    expect(Array.from(swapSubCodebook(fixed, varied, 2, 0))).toEqual([1, 20, 3, 40, 5, 60]);
    expect(Array.from(swapSubCodebook(fixed, varied, 3, 2))).toEqual([10, 20, 3, 40, 50, 6]);
    expect(() => swapSubCodebook(fixed, varied.subarray(1), 2, 0)).toThrow('swapSubCodebook: token maps of 6 and 5 values for K = 2');
  });
});
