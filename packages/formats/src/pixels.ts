import * as tf from '@tensorflow/tfjs';

/** uint8 pixels [B,H,W,C] (0..255) -> float tensor [B,H,W,C] in [-1, 1] (v/127.5 - 1). */
export function toFloat(pixels: Uint8Array, shape: [number, number, number, number]): tf.Tensor4D {
  const [b, h, w, c] = shape;
  if (pixels.length !== b * h * w * c) throw new Error(`toFloat: ${pixels.length} pixels do not fit shape [${shape.join(',')}]`);
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] / 127.5 - 1;
  return tf.tensor4d(out, shape);
}

/** Float tensor [B,H,W,C] in [-1, 1] -> uint8 pixels [B,H,W,C]: clipped to [-1, 1], scaled, rounded. Does not dispose x. */
export async function toUint8(x: tf.Tensor4D): Promise<Uint8Array> {
  const v = await x.data();
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const f = v[i] > 1 ? 1 : v[i] < -1 ? -1 : v[i]; // NaN falls through to Math.round(NaN) -> 0 in a Uint8Array
    out[i] = Math.round((f + 1) * 127.5);
  }
  return out;
}
