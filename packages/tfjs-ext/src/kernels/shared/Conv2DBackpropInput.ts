import * as tf from '@tensorflow/tfjs';
import { composite, KernelScope, type TensorBackend } from '../compose';

/**
 * Stride-1 correlation of x with filter and per-side padding; negative padding crops x first.
 * x: [B,H,W,C], filter: [KH,KW,C,Co] -> [B, H+top+bottom-KH+1, W+left+right-KW+1, Co].
 */
function convPadded(s: KernelScope, x: tf.TensorInfo, filter: tf.TensorInfo, top: number, bottom: number, left: number, right: number): tf.TensorInfo {
  let xc = x;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [b, h, w, c] = x.shape as [number, number, number, number];
    const [ct, cb, cl, cr] = [top, bottom, left, right].map((p) => Math.max(-p, 0)) as [number, number, number, number];
    xc = s.run('Slice', { x }, { begin: [0, ct, cl, 0], size: [b, h - ct - cb, w - cl - cr, c] });
  }
  const pad = [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]];
  return s.run('Conv2D', { x: xc, filter }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] });
}

/**
 * dx[b,iy,ix,ci] = sum over taps and co of dy[b,oy,ox,co] * W[kh,kw,ci,co] where iy = oy*sh + kh - padTop.
 * dy: [B,OH,OW,Co], filter: [KH,KW,Ci,Co] -> dx: inputShape [B,H,W,Ci]. NHWC, dilation 1.
 *
 * Written as stride-1 convolutions with the filter rotated 180 degrees and in/out channels swapped, so the
 * backend's fast Conv2D does the work: the wasm backend's own Conv2DBackpropInput is a scalar loop at
 * ~2 GFLOP/s against ~20 for its XNNPACK Conv2D. For stride s > 1, dx splits into s*s interleaved phases
 * (rows iy = t*s + u); phase (u,v) only meets the taps kh = ry + s*j, kw = rx + s*i, so it is a stride-1
 * convolution of dy with that sub-filter, and the phases are interleaved back. Total multiply-adds equal the
 * forward conv's (zero-stuffing dy instead would waste (s*s-1)/(s*s) of them).
 */
export function conv2dBackpropInputImpl(s: KernelScope, dy: tf.TensorInfo, filter: tf.TensorInfo, attrs: tf.NamedAttrMap): tf.TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropInput: only NHWC is supported, got ${dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: Ci, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { top: padTop, left: padLeft } = info.padInfo;
  const rotated = s.transpose(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [0, 1, 3, 2]); // [KH,KW,Co,Ci]
  if (sh === 1 && sw === 1) {
    // dx[iy] = sum_k' dy[iy + k' - (KH-1-padTop)] * rotated[k']: pad so the output is exactly H x W.
    const top = KH - 1 - padTop;
    const left = KW - 1 - padLeft;
    return convPadded(s, dy, rotated, top, H + KH - 1 - top - OH, left, W + KW - 1 - left - OW);
  }
  const T = Math.ceil(H / sh);
  const Tw = Math.ceil(W / sw);
  const rowsOfPhases: tf.TensorInfo[] = [];
  for (let u = 0; u < sh; u++) {
    const phases: tf.TensorInfo[] = [];
    for (let v = 0; v < sw; v++) {
      // Rows iy = t*sh + u meet taps kh ≡ (u + padTop) mod sh, and read dy row (t + cu - j) for tap ry + sh*j.
      const ry = (u + padTop) % sh;
      const rx = (v + padLeft) % sw;
      const cu = Math.floor((u + padTop) / sh);
      const cv = Math.floor((v + padLeft) / sw);
      const nj = ry < KH ? Math.ceil((KH - ry) / sh) : 0;
      const ni = rx < KW ? Math.ceil((KW - rx) / sw) : 0;
      if (nj === 0 || ni === 0) {
        phases.push(s.make([B, T, Tw, Ci], 'float32', new Float32Array(B * T * Tw * Ci)));
        continue;
      }
      // Taps ry, ry+sh, ... of the rotated filter are KH-1-ry, KH-1-ry-sh, ...: a strided window of it.
      const sub = s.run(
        'StridedSlice',
        { x: rotated },
        {
          begin: [KH - 1 - ry - (nj - 1) * sh, KW - 1 - rx - (ni - 1) * sw, 0, 0],
          end: [KH - ry, KW - rx, filter.shape[3]!, Ci],
          strides: [sh, sw, 1, 1],
          beginMask: 0,
          endMask: 0,
          ellipsisMask: 0,
          newAxisMask: 0,
          shrinkAxisMask: 0,
        },
      ); // [nj,ni,Co,Ci]
      // Output row t = sum_j' dy[t + cu - (nj-1) + j'] * sub[j']: top padding nj-1-cu, T rows out.
      const top = nj - 1 - cu;
      const left = ni - 1 - cv;
      phases.push(convPadded(s, dy, sub, top, T + nj - 1 - top - OH, left, Tw + ni - 1 - left - OW));
    }
    rowsOfPhases.push(s.run('Pack', phases, { axis: 3 })); // [B,T,Tw,sw,Ci]
  }
  const all = s.run('Pack', rowsOfPhases, { axis: 2 }); // [B,T,sh,Tw,sw,Ci]
  const dense = s.reshape(all, [B, T * sh, Tw * sw, Ci]);
  if (T * sh === H && Tw * sw === W) return dense;
  return s.run('Slice', { x: dense }, { begin: [0, 0, 0, 0], size: [B, H, W, Ci] });
}

/** Conv2DBackpropInput for `backendName` as a composite of its Reverse, Transpose, (Strided)Slice, Conv2D and Pack kernels. */
export function makeConv2dBackpropInput(backendName: string): tf.KernelConfig {
  return {
    kernelName: 'Conv2DBackpropInput',
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) =>
      composite(backend as TensorBackend, backendName, (s) => conv2dBackpropInputImpl(s, inputs.dy!, inputs.filter!, attrs ?? {})),
  };
}
