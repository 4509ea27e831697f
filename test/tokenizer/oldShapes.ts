// Older (version-1) tokenizer config shapes and a fingerprint of one forward pass (the same script ran on the old code).
import * as tf from '@tensorflow/tfjs';
import { createTokenizer, tokenizerForward, type StoredTokenizerConfig } from '@factorgen/tokenizer';

const q = (kind: string, K: number, extra: Record<string, unknown> = {}) => ({
  kind, subCodebooks: Array.from({ length: K }, () => ({ size: 8, dim: 4 })), beta: 0.25, entropyWeight: 0.1, entropyTemperature: 0.01,
  disentangleWeight: K >= 2 ? 0.1 : 0, ...extra,
});
const base = { imageSize: 8, channels: 1, baseChannels: 4, channelMult: [1, 2], blocksPerLevel: 1, attention: true, normGroups: 2, latentChannels: 8, perceptualWeight: 0 };
export const OLD_SHAPES: Record<string, unknown> = {
  'fq, no entropyLogits/disentangleOn/lossOverK/factorize': { ...base, quantizer: q('fq', 2) },
  'fq branch without branchBlocks': { ...base, quantizer: q('fq', 2), factorize: 'branch' },
  "vq with quantProj 'linear'": { ...base, quantizer: q('vq', 1, { entropyLogits: 'sq-dist' }), quantProj: 'linear' },
  "fq with quantProj 'attn', no attnProjAttention, no lossOverK": { ...base, quantizer: q('fq', 2, { disentangleOn: 'quantized' }), quantProj: 'attn' },
  "vq with quantProj 'attn', bidirectional, lossOverK 'mean'": { ...base, quantizer: q('vq', 1, { lossOverK: 'mean' }), quantProj: 'attn', attnProjAttention: 'bidirectional' },
  "fq branch with quantProj 'attn' (per-branch projections)": { ...base, quantizer: q('fq', 2), quantProj: 'attn', factorize: 'branch', branchBlocks: 1 },
};

/** [sum of recon, recon[0], the seven losses, total, indices...] of a fixed batch through a tokenizer made from seed 'migrate'. */
export function fingerprint(cfg: unknown): number[] {
  // the shapes are checked by createTokenizer itself (at 7de1f35 this cast was to that code's TokenizerConfig)
  const tok = createTokenizer(cfg as StoredTokenizerConfig, 'migrate');
  const x = tf.tensor4d(Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i * 0.7) * 0.9), [2, 8, 8, 1]);
  const out = tf.tidy(() => {
    const f = tokenizerForward(tok, x);
    const l = f.losses;
    return [
      tf.sum(f.recon).dataSync()[0], f.recon.dataSync()[0],
      ...[l.recon, l.codebook, l.commitment, l.entropy, l.disentangle, l.perceptual, l.align, f.total].map((t) => t.dataSync()[0]),
      ...Array.from(f.indices.dataSync()),
    ];
  });
  x.dispose();
  tok.params.dispose();
  return out;
}

/**
 * fingerprint() of each OLD_SHAPES config, computed with the code before configs had versions (main 7de1f35, cpu backend),
 * so a migrated config is checked against what its shape gave then, bit for bit.
 */
export const BEFORE: Record<string, number[]> = {
  "fq, no entropyLogits/disentangleOn/lossOverK/factorize": [7.445737838745117,  0.12147901952266693,  0.40387576818466187,  0.2575424313545227,  0.06438560783863068,  -0.3462682366371155,  0.03695187345147133,  0,  0,  0.4164874255657196,  0,  0,  0,  7,  1,  2,  7,  6,  0,  4,  0,  6,  0,  6,  2,  5,  7,  6,  0,  6,  4,  1,  2,  3,  5,  3,  0,  1,  0,  1,  2,  3,  0,  7,  2,  5,  1,  6,  5,  0,  0,  6,  4,  5,  1,  2,  0,  1,  1,  6,  0,  6,  2,  3,  5,  1,  4,  5,  5,  1,  5,  1,  4,  3],
  "fq branch without branchBlocks": [8.260130882263184,  0.014888446778059006,  0.4172239899635315,  0.35107421875,  0.0877685546875,  -0.32304802536964417,  0.020596224814653397,  0,  0,  0.5536149144172668,  4,  7,  4,  7,  3,  4,  7,  1,  2,  4,  4,  7,  2,  6,  4,  2,  1,  0,  1,  7,  2,  2,  3,  1,  6,  1,  3,  2,  1,  0,  1,  7,  4,  7,  4,  1,  3,  4,  4,  0,  5,  0,  2,  6,  2,  2,  4,  2,  2,  0,  2,  7,  3,  4,  4,  2,  3,  4,  1,  0,  1,  2,  3,  7],
  "vq with quantProj 'linear'": [-20.30854606628418,  0.4523041248321533,  0.5133950114250183,  0.14202773571014404,  0.03550693392753601,  -0.16409602761268616,  0,  0,  0,  0.5268336534500122,  0,  0,  1,  7,  0,  0,  0,  2,  7,  0,  4,  2,  5,  0,  0,  2,  0,  2,  1,  5,  0,  4,  1,  0,  1,  0,  2,  5,  4,  5,  5,  4],
  "fq with quantProj 'attn', no attnProjAttention, no lossOverK": [20.236526489257812,  -0.06481426954269409,  0.4575253427028656,  0.36517441272735596,  0.09129360318183899,  -0.2676139771938324,  0.008569855242967606,  0,  0,  0.6549491882324219,  7,  5,  2,  0,  2,  1,  5,  1,  5,  5,  5,  1,  2,  1,  5,  1,  5,  7,  2,  4,  5,  7,  3,  3,  5,  7,  5,  7,  5,  7,  5,  7,  2,  0,  5,  1,  5,  1,  5,  0,  5,  0,  7,  1,  5,  1,  5,  1,  7,  1,  2,  1,  4,  2,  5,  0,  5,  7,  5,  7,  5,  7,  1,  3],
  "vq with quantProj 'attn', bidirectional, lossOverK 'mean'": [22.965904235839844,  0.0612451545894146,  0.6865189671516418,  0.20199912786483765,  0.05049978196620941,  -0.15949015319347382,  0,  0,  0,  0.7795277237892151,  5,  3,  4,  4,  5,  4,  4,  1,  2,  4,  4,  5,  2,  2,  2,  2,  3,  1,  4,  3,  3,  5,  1,  3,  5,  6,  5,  4,  2,  2,  2,  5],
  "fq branch with quantProj 'attn' (per-branch projections)": [12.180374145507812,  0.02275223471224308,  0.5511496663093567,  0.3307493031024933,  0.08268732577562332,  -0.30083441734313965,  0.027864698320627213,  0,  0,  0.6916165947914124,  0,  4,  2,  4,  2,  2,  2,  2,  3,  2,  4,  4,  5,  2,  4,  2,  5,  3,  6,  4,  6,  3,  6,  4,  3,  2,  6,  1,  3,  4,  2,  4,  4,  0,  2,  2,  2,  2,  4,  2,  2,  4,  3,  2,  3,  2,  1,  2,  6,  6,  6,  4,  3,  2,  3,  1,  4,  2,  6,  3,  6,  3,  6,  4],
};
