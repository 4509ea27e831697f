import * as tf from '@tensorflow/tfjs';
import { ParamStore } from '@factorgen/shared';
import type { TokenizerConfig } from './config';
import {
  attnBlock, conv2d, createAttnBlock, createConv, createDownsample, createGroupNorm, createResBlock,
  downsample, groupNorm, resBlock, swish,
} from './layers';

/**
 * VQGAN-style encoder, registered under 'encoder/': conv_in -> per level `blocksPerLevel` ResBlocks
 * (width baseChannels*channelMult[i]) and a stride-2 downsample between levels -> mid (ResBlock,
 * [attention], ResBlock) -> GN-swish-conv_out to latentChannels.
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
  createGroupNorm(store, `${p}/norm_out`, cin);
  createConv(store, `${p}/conv_out`, cin, cfg.latentChannels);
}

/** x: [B,H,W,channels] in [-1,1] -> latent [B,h,w,latentChannels], h = H / 2^(levels-1). */
export function encode(store: ParamStore, cfg: TokenizerConfig, x: tf.Tensor4D): tf.Tensor4D {
  const p = 'encoder';
  const g = cfg.normGroups;
  let h = conv2d(store, `${p}/conv_in`, x);
  cfg.channelMult.forEach((_m, level) => {
    for (let i = 0; i < cfg.blocksPerLevel; i++) h = resBlock(store, `${p}/down${level}/res${i}`, h, g);
    if (level < cfg.channelMult.length - 1) h = downsample(store, `${p}/down${level}/down`, h);
  });
  h = resBlock(store, `${p}/mid/res0`, h, g);
  if (cfg.attention) h = attnBlock(store, `${p}/mid/attn`, h, g);
  h = resBlock(store, `${p}/mid/res1`, h, g);
  return conv2d(store, `${p}/conv_out`, swish(groupNorm(store, `${p}/norm_out`, h, g)));
}
