import * as tf from '@tensorflow/tfjs';
import { makeTensor, type TensorBackend } from '../compose';

/**
 * MaxPoolGrad in plain JS over the backend's data: routes each dy value to the first maximum of its window.
 * dy: [B,OH,OW,C], input: [B,H,W,C] -> dx: [B,H,W,C].
 * Replaces wasm's kernel, which seeds its running max with FLT_MIN (the smallest positive float), so any
 * window whose values are all negative sends its gradient to the window's first element.
 */
export function makeMaxPoolGrad(backendName: string): tf.KernelConfig {
  return {
    kernelName: 'MaxPoolGrad',
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const be = backend as TensorBackend;
      const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
      const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
      const info = tf.backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        filterSize,
        strides,
        1,
        pad,
        dimRoundingMode,
      );
      const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
      const { filterHeight: FH, filterWidth: FW, strideHeight: sh, strideWidth: sw } = info;
      const { top, left } = info.padInfo;
      const x = be.readSync(input.dataId) as Float32Array;
      const g = be.readSync(dy.dataId) as Float32Array;
      const dx = new Float32Array(B * H * W * C);
      let o = 0;
      for (let b = 0; b < B; b++) {
        for (let oy = 0; oy < OH; oy++) {
          const y0 = oy * sh - top;
          for (let ox = 0; ox < OW; ox++) {
            const x0 = ox * sw - left;
            for (let c = 0; c < C; c++, o++) {
              let best = Number.NEGATIVE_INFINITY;
              let at = -1;
              for (let fy = 0; fy < FH; fy++) {
                const yy = y0 + fy;
                if (yy < 0 || yy >= H) continue;
                for (let fx = 0; fx < FW; fx++) {
                  const xx = x0 + fx;
                  if (xx < 0 || xx >= W) continue;
                  const i = ((b * H + yy) * W + xx) * C + c;
                  if (x[i]! > best || at < 0) {
                    best = x[i]!;
                    at = i;
                  }
                }
              }
              if (at >= 0) dx[at] += g[o]!;
            }
          }
        }
      }
      return makeTensor(be, input.shape, 'float32', dx);
    },
  };
}
