import * as tf from '@tensorflow/tfjs';
import { ParamStore, conv2d, createConv } from '@factorgen/nn';
import type { AdversarialConfig } from '../config/schema';

/**
 * PatchGAN discriminator under 'disc/' (keep it in its own ParamStore: it has its own optimizer):
 * `layers` 4x4 stride-2 convs (width baseChannels * 2^i, capped at 8x) with leaky ReLU 0.2 and no
 * normalization (no batch statistics to couple real and fake batches), then a 3x3 conv to one logit per patch.
 * 28x28 with layers 2 -> 7x7 patch logits.
 */
export function createDiscriminator(store: ParamStore, acfg: AdversarialConfig, channels: number): void {
  let cin = channels;
  for (let i = 0; i < acfg.layers; i++) {
    const cout = acfg.baseChannels * 2 ** Math.min(i, 3);
    createConv(store, `disc/conv${i}`, cin, cout, 4);
    cin = cout;
  }
  createConv(store, 'disc/out', cin, 1, 3);
}

/** x: [B,H,W,C] in [-1,1] -> patch logits [B,H/2^layers,W/2^layers,1] (ceil). */
export function discriminatorForward(store: ParamStore, acfg: AdversarialConfig, x: tf.Tensor4D): tf.Tensor4D {
  let h = x;
  for (let i = 0; i < acfg.layers; i++) h = tf.leakyRelu(conv2d(store, `disc/conv${i}`, h, 2), 0.2);
  return conv2d(store, 'disc/out', h);
}

// The hinge losses live in @factorgen/nn; re-exported under their old names for the trainer.
export { dLossHinge, gLossHinge } from '@factorgen/nn';
