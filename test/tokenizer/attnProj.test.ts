import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { ParamStore } from '@factorgen/nn';
import { Rng } from '@factorgen/nn';
import { attnProjection, attnProjectionHeads, createAttnProjection } from '@factorgen/tokenizer';
import { configErrors, currentConfig, quantizerDefaults, type TokenizerConfigV1 } from '@factorgen/tokenizer';
import { createTokenizer, decodeTokens, encodeTokens, tokenizerForward } from '@factorgen/tokenizer';

beforeAll(async () => {
  await initBackend('cpu');
});

const rand = (n: number, seed: string) => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => r.normal());
};

describe("UniTok's attention projection", () => {
  it.each([[8, 4], [4, 8]])('%i -> %i, causal option: shapes, head count, and causal over raster order (position p sees positions <= p only)', (inDim, outDim) => {
    expect(attnProjectionHeads(inDim, outDim)).toBe(2);
    const store = new ParamStore(new Rng(`ap${inDim}`));
    createAttnProjection(store, 'p', inDim, outDim);
    // biases and LN offsets are zeros at init; give them values so that every path is exercised
    for (const [name, v] of store.vars) if (name.endsWith('/b') || name.endsWith('/beta')) v.assign(tf.tensor(rand(v.size, name), v.shape));
    const x = rand(2 * 2 * 3 * inDim, 'x');
    const y2 = x.slice();
    for (let c = 0; c < inDim; c++) y2[(2 * 3 - 1) * inDim + c] += c; // change the last position of image 0 only (not by a constant, which LayerNorm removes)
    const [a, b] = tf.tidy(() => [x, y2].map((v) => Array.from(attnProjection(store, 'p', tf.tensor4d(v, [2, 2, 3, inDim]), outDim, true).dataSync())));
    expect(a.length).toBe(2 * 6 * outDim);
    // image 0: positions 0..4 unchanged, position 5 changed; image 1 unchanged
    for (let p = 0; p < 12; p++) {
      const same = a.slice(p * outDim, (p + 1) * outDim).every((v, i) => v === b[p * outDim + i]);
      expect(same, `position ${p}`).toBe(p !== 5);
    }
    store.dispose();
  });

  it.each([[8, 4], [4, 8]])('%i -> %i, bidirectional (UniTok since b015f87): a change at the last position changes every position of that image, and the layer commutes with a permutation of the positions', (inDim, outDim) => {
    const store = new ParamStore(new Rng(`bi${inDim}`));
    createAttnProjection(store, 'p', inDim, outDim);
    // every parameter random (at init the zero output layers would hide the attention branch); small, so that no
    // softmax saturates to exact zeros
    for (const [name, v] of store.vars) v.assign(tf.tensor(rand(v.size, name).map((u) => 0.2 * u), v.shape));
    const x = rand(2 * 6 * inDim, 'x');
    const y2 = x.slice();
    for (let c = 0; c < inDim; c++) y2[5 * inDim + c] += c; // the last position of image 0 (not a constant: LayerNorm would remove it)
    // positions of image 0 reversed: 5,4,...,0
    const rev = x.slice();
    for (let p = 0; p < 6; p++) rev.splice(p * inDim, inDim, ...x.slice((5 - p) * inDim, (6 - p) * inDim));
    const [a, b, r] = tf.tidy(() => [x, y2, rev].map((v) => Array.from(attnProjection(store, 'p', tf.tensor4d(v, [2, 2, 3, inDim]), outDim, false).dataSync())));
    for (let p = 0; p < 12; p++) {
      const same = a.slice(p * outDim, (p + 1) * outDim).every((v, i) => v === b[p * outDim + i]);
      expect(same, `position ${p}`).toBe(p >= 6); // image 0: all six change (causal: only position 5); image 1: none
    }
    for (let p = 0; p < 6; p++) {
      for (let i = 0; i < outDim; i++) expect(r[p * outDim + i], `reversed position ${p}`).toBeCloseTo(a[(5 - p) * outDim + i], 5);
    }
    store.dispose();
  });

  it('version-1 configs without attnProjAttention (written before it) stay causal; the field is checked', () => {
    const base: TokenizerConfigV1 = {
      imageSize: 8, channels: 1, baseChannels: 4, channelMult: [1, 2], blocksPerLevel: 1, attention: false, normGroups: 2, latentChannels: 8,
      quantizer: quantizerDefaults('fq', [{ size: 8, dim: 4 }, { size: 8, dim: 4 }]), perceptualWeight: 0, quantProj: 'attn',
    };
    expect(currentConfig(base).quantizer).toMatchObject({ kind: 'unitok', attention: 'causal' });
    expect(currentConfig({ ...base, attnProjAttention: 'causal' }).quantizer).toMatchObject({ kind: 'unitok', attention: 'causal' });
    expect(currentConfig({ ...base, attnProjAttention: 'bidirectional' }).quantizer).toMatchObject({ kind: 'unitok', attention: 'bidirectional' });
    expect(configErrors({ ...base, attnProjAttention: 'both' })).toEqual(['quantizer.attention must be "causal" or "bidirectional" with kind "unitok" (got "both")']);
  });

  it('the wrong widths are rejected, in the config and in the layer', () => {
    expect(() => attnProjectionHeads(6, 4)).toThrow('attnProjection: 6 and 4 do not divide one another');
    const cfg: TokenizerConfigV1 = {
      imageSize: 8, channels: 1, baseChannels: 4, channelMult: [1, 2], blocksPerLevel: 1, attention: false, normGroups: 2, latentChannels: 6,
      quantizer: quantizerDefaults('fq', [{ size: 8, dim: 4 }, { size: 8, dim: 4 }]), perceptualWeight: 0, quantProj: 'attn',
    };
    expect(configErrors(cfg)).toEqual(['quantizer.kind "unitok" (the attention projection) needs latentChannels 6 and the code widths (8, and their sum 8) to divide one another']);
  });

  it.each(['projection', 'branch'] as const)('a tokenizer with --quant-proj attn (%s): decoding its tokens reproduces the forward pass exactly', (factorize) => {
    const cfg: TokenizerConfigV1 = {
      imageSize: 8, channels: 1, baseChannels: 4, channelMult: [1, 2], blocksPerLevel: 1, attention: false, normGroups: 2, latentChannels: 8,
      quantizer: quantizerDefaults('fq', [{ size: 8, dim: 4 }, { size: 8, dim: 4 }]), perceptualWeight: 0, quantProj: 'attn', factorize,
    };
    expect(configErrors(cfg)).toEqual([]);
    const tok = createTokenizer(cfg, 'attn');
    expect(tok.params.has('quant/k0/proj/w')).toBe(false);
    expect(tok.params.has(factorize === 'branch' ? 'quant/k1/attn_pre/qkv/w' : 'quant/attn_pre/qkv/w')).toBe(true);
    const x = tf.tensor4d(rand(2 * 64, 'img').map((v) => Math.tanh(v)), [2, 8, 8, 1]);
    const recon = tf.tidy(() => Array.from(tf.clipByValue(tokenizerForward(tok, x).recon, -1, 1).dataSync()));
    const tokens = encodeTokens(tok, x);
    const decoded = decodeTokens(tok, tokens);
    expect(Array.from(decoded.dataSync())).toEqual(recon);
    tf.dispose([x, tokens, decoded]);
    tok.params.dispose();
  });
});
