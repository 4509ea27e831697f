import * as tf from '@tensorflow/tfjs';
import { composite, type KernelScope, type TensorBackend } from '../compose';
import { conv2dBackpropFilterImpl } from '../shared/Conv2DBackpropFilter';
import { gemm4x8Kernel, gemm4x8Memory } from '../../simd/gemm4x8';
import type { WasmBackend } from './wasmBackend';

/** Grid positions per output position above which the Conv2D composite is used: the padding's extra work then outweighs the faster kernel (measured: 14x14 and 7x7 maps, 1.31 and 1.65). */
export const gridMaxWaste = 1.2;

/**
 * Values of the dy grid (the product's right operand, re-read for every row) and of the phase planes per chunk of the
 * batch: 1 MiB each at most (one image at least), so the operands stay in cache and the kernel's memory stays small.
 */
export const gridChunkElements = 256 * 1024;

type Geometry = {
  H: number; W: number; Ci: number; Co: number; OH: number; OW: number; sh: number; sw: number;
  top: number; left: number; Gh: number; Gw: number;
};

/**
 * Phase planes of images b0 .. b0+nb-1: ph[((u*sw + v)*Ci + ci)*len + (b-b0)*Gh*Gw + i*Gw + j] =
 * x[b, i*sh + u - top, j*sw + v - left, ci], 0 in the padding. x: NHWC values; ph must be zero beforehand.
 */
function phasePlanes(x: Float32Array, ph: Float32Array, at: number, g: Geometry, b0: number, nb: number, len: number): void {
  const { H, W, Ci, sh, sw, top, left, Gh, Gw } = g;
  for (let b = b0; b < b0 + nb; b++) {
    for (let r = 0; r < H; r++) {
      const i = Math.floor((r + top) / sh);
      if (i >= Gh) continue; // rows past the last output row's taps
      const u = r + top - i * sh;
      for (let c = 0; c < W; c++) {
        const j = Math.floor((c + left) / sw);
        if (j >= Gw) continue;
        const v = c + left - j * sw;
        let o = at + (u * sw + v) * Ci * len + (b - b0) * Gh * Gw + i * Gw + j;
        let src = ((b * H + r) * W + c) * Ci;
        for (let ci = 0; ci < Ci; ci++, o += len) ph[o] = x[src++]!;
      }
    }
  }
}

/**
 * dW[kh,kw,ci,co] = sum_{b,oy,ox} x[b, oy*sh+kh-top, ox*sw+kw-left, ci] * dy[b,oy,ox,co] (zero outside x).
 * x: [B,H,W,Ci], dy: [B,OH,OW,Co] -> dW: [KH,KW,Ci,Co]. NHWC, dilation 1 (tfjs's conv2d gradient allows no other);
 * any stride, padding ('same', 'valid', explicit) and kernel size. Returns null (the caller takes the Conv2D composite)
 * where WebAssembly SIMD128 is missing, Ci is not a multiple of 4 or Co of 8 (the kernel's blocks), or the map is small
 * (gridMaxWaste).
 *
 * Without an im2col copy: the padded x is split into sh*sw phase planes on a grid of Gh x Gw = (OH + (KH-1)/sh) x
 * (OW + (KW-1)/sw) positions per image, channel-major, and dy is placed on the same grid (zeros elsewhere). Tap (kh,kw)
 * is then plane (kh%sh, kw%sw) shifted by (kh/sh)*Gw + kw/sw positions, so dW[kh,kw] [Ci,Co] = (shifted plane rows) @
 * dyGrid is one product whose left operand is the planes themselves at an offset, on our SIMD128 kernel (gemm4x8.wat).
 * The grid's extra positions cost Gh*Gw/(OH*OW) - 1 more multiply-adds (15 % at 28x28, 3x3). The batch goes in chunks
 * whose dy grid stays in cache; each dW element sums its chunk's terms in order and the chunks in batch order
 * (float32), so the result is deterministic and the same at any --threads (one thread runs it).
 */
export function wasmConv2dBackpropFilterImpl(s: KernelScope, x: tf.TensorInfo, dy: tf.TensorInfo, attrs: tf.NamedAttrMap): tf.TensorInfo | null {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter: only NHWC is supported, got ${dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: Ci, outHeight: OH, outWidth: OW, outChannels: Co } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const Gh = OH + Math.floor((KH - 1) / sh);
  const Gw = OW + Math.floor((KW - 1) / sw);
  const g: Geometry = { H, W, Ci, Co, OH, OW, sh, sw, top: info.padInfo.top, left: info.padInfo.left, Gh, Gw };
  const G = Gh * Gw;
  const kernel = gemm4x8Kernel();
  if (!kernel || Ci % 4 !== 0 || Co % 8 !== 0 || G > gridMaxWaste * OH * OW) return null;
  const tail = Math.floor((KH - 1) / sh) * Gw + Math.floor((KW - 1) / sw);
  const nbMax = Math.max(1, Math.min(B, Math.floor(gridChunkElements / (G * Math.max(Co, sh * sw * Ci)))));
  // Kernel memory: planes (+ zeros the last row's shift reads past them), dy grid, one tap's [Ci,Co] product.
  const lenMax = nbMax * G + tail;
  const phN = sh * sw * Ci * lenMax + tail;
  const mem = gemm4x8Memory(kernel, 4 * (phN + lenMax * Co + Ci * Co));
  const backend = s.backend as WasmBackend;
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const dys = backend.typedArrayFromHeap(dy) as Float32Array;
  const out = new Float32Array(KH * KW * Ci * Co);
  for (let b0 = 0; b0 < B; b0 += nbMax) {
    const nb = Math.min(nbMax, B - b0);
    const len = nb * G + tail; // row length of the planes and rows of the dy grid (its last `tail` rows are zero)
    const bAt = sh * sw * Ci * len + tail;
    const cAt = bAt + len * Co;
    mem.fill(0, 0, cAt);
    phasePlanes(xs, mem, 0, g, b0, nb, len);
    for (let b = 0; b < nb; b++) {
      for (let oy = 0; oy < OH; oy++) {
        const from = ((b0 + b) * OH + oy) * OW * Co;
        mem.set(dys.subarray(from, from + OW * Co), bAt + (b * G + oy * Gw) * Co);
      }
    }
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const plane = (kh % sh) * sw + (kw % sw);
        const shift = Math.floor(kh / sh) * Gw + Math.floor(kw / sw);
        kernel.gemm(4 * (plane * Ci * len + shift), len, 4 * bAt, 4 * cAt, Ci, len, Co);
        const o = (kh * KW + kw) * Ci * Co;
        for (let k = 0; k < Ci * Co; k++) out[o + k] += mem[cAt + k]!;
      }
    }
  }
  return s.make([KH, KW, Ci, Co], 'float32', out);
}

/** Conv2DBackpropFilter for wasm: grid products on our SIMD128 kernel where they pay; others (and non-float32, empty inputs) go to the Conv2D composite. */
export function makeWasmConv2dBackpropFilter(): tf.KernelConfig {
  return {
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) =>
      composite(backend as TensorBackend, 'wasm', (s) => {
        const x = inputs.x!;
        const dy = inputs.dy!;
        const a = (attrs ?? {}) as tf.NamedAttrMap;
        const empty = [...x.shape, ...dy.shape].some((d) => d === 0);
        const ours = x.dtype === 'float32' && dy.dtype === 'float32' && !empty ? wasmConv2dBackpropFilterImpl(s, x, dy, a) : null;
        return ours ?? conv2dBackpropFilterImpl(s, x, dy, a);
      }),
  };
}
