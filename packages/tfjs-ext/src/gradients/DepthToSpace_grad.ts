import * as tf from '@tensorflow/tfjs';

/**
 * Gradient of depthToSpace (tfjs has none): the inverse rearrangement (space-to-depth), NHWC.
 * dy: [B, H*bs, W*bs, C] -> dx: [B, H, W, bs*bs*C], with depth index (i*bs + j)*C + c as in TF's DCR order.
 */
export const depthToSpaceGrad: tf.GradConfig = {
  kernelName: 'DepthToSpace',
  gradFunc: (dy, _saved, attrs) => {
    const { blockSize: bs, dataFormat } = attrs as unknown as tf.DepthToSpaceAttrs;
    if (dataFormat !== 'NHWC') throw new Error(`depthToSpace gradient: only NHWC is supported, got ${dataFormat}`);
    const g = dy as tf.Tensor;
    const [B, HB, WB, C] = g.shape as [number, number, number, number];
    const H = HB / bs;
    const W = WB / bs;
    return {
      x: () => tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(g, [B, H, bs, W, bs, C]), [0, 1, 3, 2, 4, 5]), [B, H, W, bs * bs * C])),
    };
  },
};
