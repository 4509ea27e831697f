import { describe, expect, it } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { assertValidConfig, codeDim, configErrors, configHash, gridSize, presetFashion, quantizerDefaults, type TokenizerConfig } from '@factorgen/tokenizer';

describe('tokenizer config', () => {
  it('presets are valid and have the documented grid', () => {
    const fq = presetFashion('fq', 2, 256);
    expect(configErrors(fq)).toEqual([]);
    expect(gridSize(fq)).toBe(7);
    expect(codeDim(fq)).toBe(16);
    expect(fq.quantizer.disentangleWeight).toBe(0.1);
    // no preset sets the older (ours, not FQGAN's) alignment any more; FQGAN's is alignTargets, from --align-target
    expect(fq.align).toBeUndefined();
    expect(fq.alignTargets).toEqual([]);
    const vq = presetFashion('vq', 1, 1024);
    expect(vq.quantizer.disentangleWeight).toBe(0);
    expect(vq.align).toBeUndefined();
    expect(gridSize({ ...vq, imageSize: 32, channelMult: [1, 1, 2, 2] })).toBe(4);
    expect(() => presetFashion('vq', 2, 16)).toThrow('presetFashion: kind "vq" needs K = 1 (got 2)');
  });

  it('reports every problem in one line', () => {
    const bad = {
      ...presetFashion('fq', 2, 16),
      imageSize: 30,
      channels: 2,
      normGroups: 3,
      quantizer: { ...quantizerDefaults('vq', [{ size: 1, dim: 8 }, { size: 4, dim: 4 }]), entropyTemperature: 0 },
      align: { subCodebook: 5, teacherDim: 8, weight: 1, temperature: 0.1 },
    };
    expect(configErrors(bad)).toEqual([
      'channels must be 1 or 3 (got 2)',
      'imageSize 30 is not divisible by the downsampling factor 4 of channelMult [1,2,2]',
      'level width 32 (baseChannels*1) is not divisible by normGroups 3',
      'level width 64 (baseChannels*2) is not divisible by normGroups 3',
      'level width 64 (baseChannels*2) is not divisible by normGroups 3',
      'quantizer.subCodebooks[0].size must be an integer >= 2 (got 1)',
      'quantizer.kind "vq" needs exactly one sub-codebook (got 2)',
      'quantizer.disentangleWeight > 0 needs at least two sub-codebooks of equal dim (dims [8,4])',
      'quantizer.entropyTemperature must be a number > 0 (got 0)',
      'align.subCodebook must index one of the 2 sub-codebooks (got 5)',
    ]);
    let err: unknown;
    try {
      assertValidConfig({ ...bad, channels: 1, imageSize: 28, normGroups: 8, align: undefined }, 'run/config.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(
      'run/config.json: quantizer.subCodebooks[0].size must be an integer >= 2 (got 1); ' +
        'quantizer.kind "vq" needs exactly one sub-codebook (got 2); ' +
        'quantizer.disentangleWeight > 0 needs at least two sub-codebooks of equal dim (dims [8,4]); ' +
        'quantizer.entropyTemperature must be a number > 0 (got 0)',
    );
    expect(configErrors(null)).toEqual(['config must be an object']);
    expect(configErrors({ ...presetFashion('vq', 1, 8), quantizer: { ...quantizerDefaults('vq', [{ size: 8, dim: 8 }]), disentangleWeight: 0.1 } })).toEqual([
      'quantizer.disentangleWeight must be 0 with a single codebook',
    ]);
  });

  it('configHash is stable under key order and undefined fields, and changes with any value', () => {
    const a = presetFashion('fq', 2, 64);
    const shuffled: TokenizerConfig = { ...Object.fromEntries(Object.entries(a).reverse()), align: undefined } as TokenizerConfig;
    expect(configHash(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(configHash(shuffled)).toBe(configHash(a));
    expect(configHash({ ...a, quantizer: { ...a.quantizer, subCodebooks: [{ dim: 8, size: 64 }, { dim: 8, size: 64 }] } })).toBe(configHash(a));
    expect(configHash({ ...a, latentChannels: 16 })).not.toBe(configHash(a));
    expect(configHash({ ...a, quantizer: { ...a.quantizer, kind: 'vq' } })).not.toBe(configHash(a));
  });
});
