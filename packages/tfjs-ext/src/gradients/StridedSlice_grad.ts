import * as tf from '@tensorflow/tfjs';

/**
 * Gradient of stridedSlice (tfjs has none): dy is scattered back to the input positions the slice read.
 * dy: the slice's output shape -> dx: x.shape, zeros elsewhere.
 * The position map comes from tfjs's own slice_util.sliceInfo (masks, ellipsis, negative strides included):
 * the output element at full-rank location loc reads x at loc*strides + begin.
 */
export const stridedSliceGrad: tf.GradConfig = {
  kernelName: 'StridedSlice',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor];
    const a = attrs as unknown as tf.StridedSliceAttrs;
    const info = tf.slice_util.sliceInfo(x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask, a.shrinkAxisMask);
    // Full-rank extent of the slice (shrunk axes have extent 1); finalShapeSparse omits shrunk axes.
    const outShape = tf.slice_util.computeOutShape(info.begin, info.end, info.strides).map((d) => Math.max(d, 0));
    const n = outShape.reduce((p, d) => p * d, 1);
    if (n === 0) return { x: () => tf.zeros(x.shape) };
    const xStrides = tf.util.computeStrides(x.shape);
    const index = new Int32Array(n);
    const loc = new Array<number>(outShape.length).fill(0);
    for (let i = 0; i < n; i++) {
      let flat = 0;
      for (let d = 0; d < outShape.length; d++) flat += (loc[d]! * info.strides[d]! + info.begin[d]!) * (d < xStrides.length ? xStrides[d]! : 1);
      index[i] = flat;
      for (let d = outShape.length - 1; d >= 0; d--) {
        if (++loc[d]! < outShape[d]!) break;
        loc[d] = 0;
      }
    }
    return {
      x: () =>
        tf.tidy(() => tf.reshape(tf.scatterND(tf.tensor2d(index, [n, 1], 'int32'), tf.reshape(dy as tf.Tensor, [n]), [x.size]), x.shape)),
    };
  },
};
