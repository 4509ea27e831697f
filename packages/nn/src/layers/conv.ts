import * as tf from '@tensorflow/tfjs';
import { fanInUniform, type ParamStore } from '../params';

/**
 * Conv parameters over a ParamStore: kernel `name/w` [k, k, cin, cout] (PyTorch-default fan-in uniform) then bias
 * `name/b` [cout] (zeros), created in that order.
 */
export function createConv(store: ParamStore, name: string, cin: number, cout: number, k = 3): void {
  store.create(`${name}/w`, [k, k, cin, cout], fanInUniform(k * k * cin));
  store.create(`${name}/b`, [cout], { kind: 'zeros' });
}

/**
 * The conv createConv registered, NHWC, 'same' padding: x: [B, H, W, cin] -> [B, ceil(H/stride), ceil(W/stride), cout]
 * (tfjs's 'same' at stride 2 pads bottom/right, as VQGAN's explicit (0,1,0,1) pad).
 */
export function conv2d(store: ParamStore, name: string, x: tf.Tensor4D, stride = 1): tf.Tensor4D {
  const y = tf.conv2d(x, store.get(`${name}/w`) as tf.Tensor4D, stride, 'same');
  return tf.add(y, store.get(`${name}/b`));
}
