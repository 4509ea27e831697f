import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { Rng, l2Normalize } from '@factorgen/nn';
import { codeEntropyLoss, cosineEntropyTemperature, createTokenizer, lookupSub, quantize, quantizerDefaults, subPrefix, type TokenizerConfigV1 } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('cpu');
});

/** A tiny UniTok-style tokenizer config: one latent of width 8 through the attention projection to K codes of 8/K. */
function config(K: number, lossOverK: 'sum' | 'mean' | undefined): TokenizerConfigV1 {
  const quantizer = { ...quantizerDefaults('fq', Array.from({ length: K }, () => ({ size: 8, dim: 8 / K }))), disentangleWeight: 0, lossOverK };
  return {
    imageSize: 8, channels: 1, baseChannels: 4, channelMult: [1, 2], blocksPerLevel: 1, attention: false, normGroups: 2, latentChannels: 8,
    quantizer, perceptualWeight: 0, quantProj: 'attn', attnProjAttention: 'bidirectional', factorize: 'projection',
  };
}

describe('quantizer losses over the K sub-codebooks', () => {
  it.each([2, 4])('K = %i: sum (FQGAN; also configs without lossOverK) and mean (UniTok) of the per-codebook losses', (K) => {
    const r = new Rng(`latent${K}`);
    const latent = tf.tensor4d(Array.from({ length: 2 * 4 * 4 * 8 }, () => r.normal()), [2, 4, 4, 8]);
    const got: Record<string, number[]> = {};
    let perK: { codebook: number; commitment: number; entropy: number }[] = [];
    for (const mode of [undefined, 'sum', 'mean'] as const) {
      const tok = createTokenizer(config(K, mode), 'same-seed');
      const cfg = tok.cfg;
      tf.tidy(() => {
        const out = quantize(tok.params, cfg, latent);
        got[String(mode)] = [out.losses.codebook, out.losses.commitment, out.losses.entropy].map((t) => t.dataSync()[0]);
        if (mode === undefined) {
          // each sub-codebook's losses from its normalized code z and its chosen row zq: mean((z - zq)^2) for both the
          // codebook and the commitment term, and the entropy loss of its own codebook
          const T = cosineEntropyTemperature(cfg.quantizer);
          const idx = tf.unstack(out.indices, 3) as tf.Tensor3D[];
          perK = out.subCodes.map((z, k) => {
            const zq = lookupSub(tok.params, k, idx[k]);
            const se = tf.mean(tf.square(tf.sub(z, zq))).dataSync()[0];
            const z2 = tf.reshape(z, [-1, 8 / K]) as tf.Tensor2D;
            const codes = l2Normalize(tok.params.get(`${subPrefix(k)}/codebook`) as tf.Tensor2D);
            return { codebook: se, commitment: se, entropy: codeEntropyLoss(z2, codes, T).dataSync()[0] };
          });
        }
      });
      tok.params.dispose();
    }
    const q = config(K, undefined).quantizer;
    const sum = (f: 'codebook' | 'commitment' | 'entropy') => perK.reduce((a, p) => a + p[f], 0);
    const summed = [sum('codebook'), q.beta * sum('commitment'), q.entropyWeight * sum('entropy')];
    expect(perK.length).toBe(K);
    expect(perK.every((p) => p.codebook > 0 && p.entropy !== 0)).toBe(true);
    summed.forEach((v, i) => {
      expect(got.undefined[i]).toBeCloseTo(v, 5);
      expect(got.sum[i]).toBe(got.undefined[i]);
      expect(got.mean[i]).toBeCloseTo(v / K, 5);
    });
    latent.dispose();
  });
});
