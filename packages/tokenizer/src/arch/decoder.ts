import * as tf from '@tensorflow/tfjs';
import { ParamStore, conv2d, createConv, createGroupNorm, groupNorm, swish } from '@factorgen/nn';
import type { TokenizerConfig } from '../config/schema';
import { attnBlock, createAttnBlock, createResBlock, createUpsample, resBlock, upsample } from './layers';

/**
 * Decoder mirroring the encoder, registered under 'decoder/': conv_in latentChannels -> widest width,
 * mid (ResBlock, [attention], ResBlock), levels from lowest resolution up with `blocksPerLevel`
 * ResBlocks and nearest-x2 + conv upsampling, then GN-swish-conv_out to image channels.
 *
 * The output is linear (no tanh), as in VQGAN/LlamaGen: Fashion-MNIST is mostly background at exactly -1,
 * which tanh only reaches asymptotically (vanishing gradient where most pixels sit). Clamp when saving images.
 */
export function createDecoder(store: ParamStore, cfg: TokenizerConfig): void {
  const p = 'decoder';
  const levels = cfg.channelMult.length;
  let cin = cfg.baseChannels * cfg.channelMult[levels - 1];
  createConv(store, `${p}/conv_in`, cfg.latentChannels, cin);
  createResBlock(store, `${p}/mid/res0`, cin, cin);
  if (cfg.attention) createAttnBlock(store, `${p}/mid/attn`, cin);
  createResBlock(store, `${p}/mid/res1`, cin, cin);
  for (let level = levels - 1; level >= 0; level--) {
    const cout = cfg.baseChannels * cfg.channelMult[level];
    for (let i = 0; i < cfg.blocksPerLevel; i++) {
      createResBlock(store, `${p}/up${level}/res${i}`, cin, cout);
      cin = cout;
    }
    if (level > 0) createUpsample(store, `${p}/up${level}/up`, cin);
  }
  createGroupNorm(store, `${p}/norm_out`, cin);
  createConv(store, `${p}/conv_out`, cin, cfg.channels);
}

/** z: [B,h,w,latentChannels] -> image [B,H,W,channels] (unclamped; trained towards [-1,1]). */
export function decode(store: ParamStore, cfg: TokenizerConfig, z: tf.Tensor4D): tf.Tensor4D {
  const p = 'decoder';
  const g = cfg.normGroups;
  let h = conv2d(store, `${p}/conv_in`, z);
  h = resBlock(store, `${p}/mid/res0`, h, g);
  if (cfg.attention) h = attnBlock(store, `${p}/mid/attn`, h, g);
  h = resBlock(store, `${p}/mid/res1`, h, g);
  for (let level = cfg.channelMult.length - 1; level >= 0; level--) {
    for (let i = 0; i < cfg.blocksPerLevel; i++) h = resBlock(store, `${p}/up${level}/res${i}`, h, g);
    if (level > 0) h = upsample(store, `${p}/up${level}/up`, h);
  }
  return conv2d(store, `${p}/conv_out`, swish(groupNorm(store, `${p}/norm_out`, h, g)));
}
