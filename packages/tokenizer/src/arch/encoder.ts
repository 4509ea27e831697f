import * as tf from '@tensorflow/tfjs';
import { ParamStore, conv2d, createConv, createGroupNorm, groupNorm, swish } from '@factorgen/nn';
import { isBranched, type TokenizerConfig } from '../config/schema';
import { attnBlock, createAttnBlock, createDownsample, createResBlock, downsample, resBlock } from './layers';

/** Parameter prefix of sub-codebook k's encoder branch (factorize 'branch'). */
export const branchPrefix = (k: number): string => `encoder/branch${k}`;

/**
 * VQGAN-style encoder, registered under 'encoder/': the trunk conv_in -> per level `blocksPerLevel` ResBlocks
 * (width baseChannels*channelMult[i]) and a stride-2 downsample between levels -> mid (ResBlock, [attention],
 * ResBlock); then either one head GN-swish-conv_out to latentChannels ('projection'), or per sub-codebook a branch
 * (FQGAN's FactorizedAdapter + norm_out_k + conv_out_k, vq_model_dual.py): `branchBlocks` x (ResBlock, [attention]),
 * GN, swish, 3x3 conv_out to latentChannels.
 */
export function createEncoder(store: ParamStore, cfg: TokenizerConfig): void {
  const p = 'encoder';
  let cin = cfg.baseChannels;
  createConv(store, `${p}/conv_in`, cfg.channels, cin);
  cfg.channelMult.forEach((m, level) => {
    const cout = cfg.baseChannels * m;
    for (let i = 0; i < cfg.blocksPerLevel; i++) {
      createResBlock(store, `${p}/down${level}/res${i}`, cin, cout);
      cin = cout;
    }
    if (level < cfg.channelMult.length - 1) createDownsample(store, `${p}/down${level}/down`, cin);
  });
  createResBlock(store, `${p}/mid/res0`, cin, cin);
  if (cfg.attention) createAttnBlock(store, `${p}/mid/attn`, cin);
  createResBlock(store, `${p}/mid/res1`, cin, cin);
  if (!isBranched(cfg)) {
    createGroupNorm(store, `${p}/norm_out`, cin);
    createConv(store, `${p}/conv_out`, cin, cfg.latentChannels);
    return;
  }
  cfg.quantizer.subCodebooks.forEach((_s, k) => {
    const b = branchPrefix(k);
    for (let i = 0; i < cfg.branchBlocks; i++) {
      createResBlock(store, `${b}/res${i}`, cin, cin);
      if (cfg.attention) createAttnBlock(store, `${b}/attn${i}`, cin);
    }
    createGroupNorm(store, `${b}/norm_out`, cin);
    createConv(store, `${b}/conv_out`, cin, cfg.latentChannels);
  });
}

/** The shared trunk: x [B,H,W,channels] in [-1,1] -> [B,h,w,width of the last level], h = H / 2^(levels-1). */
export function encodeTrunk(store: ParamStore, cfg: TokenizerConfig, x: tf.Tensor4D): tf.Tensor4D {
  const p = 'encoder';
  const g = cfg.normGroups;
  let h = conv2d(store, `${p}/conv_in`, x);
  cfg.channelMult.forEach((_m, level) => {
    for (let i = 0; i < cfg.blocksPerLevel; i++) h = resBlock(store, `${p}/down${level}/res${i}`, h, g);
    if (level < cfg.channelMult.length - 1) h = downsample(store, `${p}/down${level}/down`, h);
  });
  h = resBlock(store, `${p}/mid/res0`, h, g);
  if (cfg.attention) h = attnBlock(store, `${p}/mid/attn`, h, g);
  return resBlock(store, `${p}/mid/res1`, h, g);
}

/** Sub-codebook k's branch: trunk output [B,h,w,width] -> its latent [B,h,w,latentChannels] (factorize 'branch'). */
export function encodeBranch(store: ParamStore, cfg: TokenizerConfig, trunk: tf.Tensor4D, k: number): tf.Tensor4D {
  const b = branchPrefix(k);
  const g = cfg.normGroups;
  let h = trunk;
  for (let i = 0; i < cfg.branchBlocks; i++) {
    h = resBlock(store, `${b}/res${i}`, h, g);
    if (cfg.attention) h = attnBlock(store, `${b}/attn${i}`, h, g);
  }
  return conv2d(store, `${b}/conv_out`, swish(groupNorm(store, `${b}/norm_out`, h, g)));
}

/**
 * x: [B,H,W,channels] in [-1,1] -> the quantizer's input: one latent [B,h,w,latentChannels] shared by every
 * sub-codebook ('projection'), or K latents, one per sub-codebook branch ('branch').
 */
export function encode(store: ParamStore, cfg: TokenizerConfig, x: tf.Tensor4D): tf.Tensor4D[] {
  const trunk = encodeTrunk(store, cfg, x);
  if (isBranched(cfg)) return cfg.quantizer.subCodebooks.map((_s, k) => encodeBranch(store, cfg, trunk, k));
  const g = cfg.normGroups;
  return [conv2d(store, 'encoder/conv_out', swish(groupNorm(store, 'encoder/norm_out', trunk, g)))];
}
