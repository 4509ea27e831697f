import * as tf from '@tensorflow/tfjs';
import { makeTensor, type TensorBackend } from './compose';

/**
 * Gradient of resizeNearestNeighbor in plain JS: each dy pixel is added to the source pixel the forward pass
 * copied (same mapping as tfjs's forward, incl. alignCorners and halfPixelCenters).
 * images: [B,H,W,C], dy: [B,OH,OW,C] -> dx: [B,H,W,C].
 * Replaces the cpu backend's kernel, which offsets dy by the images' batch stride and so gets every batch
 * element after the first wrong (and ignores halfPixelCenters). The wasm kernel is right except that it
 * ignores halfPixelCenters: pass it as `native` to keep it for that case.
 */
export function makeResizeNearestNeighborGrad(backendName: string, native?: tf.KernelConfig): tf.KernelConfig {
  return {
    kernelName: 'ResizeNearestNeighborGrad',
    backendName,
    setupFunc: native?.setupFunc,
    disposeFunc: native?.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      if (native && !(attrs as unknown as tf.ResizeNearestNeighborGradAttrs).halfPixelCenters) return native.kernelFunc(args);
      const be = backend as TensorBackend;
      const { images, dy } = inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
      const { alignCorners, halfPixelCenters } = attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
      const [B, H, W, C] = images.shape as [number, number, number, number];
      const [, OH, OW] = dy.shape as [number, number, number, number];
      const source = (outSize: number, inSize: number): Int32Array => {
        const align = alignCorners && outSize > 1;
        const ratio = (align ? inSize - 1 : inSize) / (align ? outSize - 1 : outSize);
        const map = new Int32Array(outSize);
        for (let i = 0; i < outSize; i++) {
          const frac = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
          let src = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
          if (halfPixelCenters) src = Math.max(0, src);
          map[i] = src;
        }
        return map;
      };
      const rows = source(OH, H);
      const cols = source(OW, W);
      const g = be.readSync(dy.dataId) as Float32Array;
      const dx = new Float32Array(B * H * W * C);
      let o = 0;
      for (let b = 0; b < B; b++) {
        for (let r = 0; r < OH; r++) {
          const rowBase = (b * H + rows[r]!) * W;
          for (let c = 0; c < OW; c++) {
            const base = (rowBase + cols[c]!) * C;
            for (let d = 0; d < C; d++) dx[base + d] += g[o++]!;
          }
        }
      }
      return makeTensor(be, images.shape, 'float32', dx);
    },
  };
}
