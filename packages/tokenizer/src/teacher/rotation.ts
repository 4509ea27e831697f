import * as tf from '@tensorflow/tfjs';
import { Rng } from '@factorgen/nn';

/**
 * Rotation prediction, the self-supervised task of RotNet (Gidaris, Singh, Komodakis, "Unsupervised Representation
 * Learning by Predicting Image Rotations", ICLR 2018): each image is turned by k x 90 degrees and the network
 * predicts k in {0,1,2,3}. No labels are used, so the teacher it trains is of another kind than the classifier.
 */
export const ROTATIONS = 4;

/**
 * x: [B,N,N,C] (square) turned counter-clockwise by k x 90 degrees: out[b,i,j] = x[b,j,N-1-i] for k = 1.
 * k is taken mod 4 (negative k turns clockwise). Throws for non-square images.
 */
export function rot90(x: tf.Tensor4D, k: number): tf.Tensor4D {
  if (x.shape[1] !== x.shape[2]) throw new Error(`rot90: images must be square (got ${x.shape[1]}x${x.shape[2]})`);
  const turns = ((k % 4) + 4) % 4;
  return tf.tidy(() => {
    let y = x;
    for (let t = 0; t < turns; t++) y = tf.transpose(tf.reverse(y, 2), [0, 2, 1, 3]);
    return turns === 0 ? tf.clone(y) : y;
  });
}

/** Per-image turns for training step `step`: uniform in {0..3}, a function of (seed, step) only (exact resume). */
export function rotationLabels(batch: number, step: number, seed: string): Int32Array {
  const rng = new Rng(`${seed}/rotation/step${step}`);
  return Int32Array.from({ length: batch }, () => rng.int(ROTATIONS));
}

/** x: [B,N,N,C], ks: B turns -> image b turned by ks[b] x 90 degrees counter-clockwise, [B,N,N,C]. */
export function rotateEach(x: tf.Tensor4D, ks: ArrayLike<number>): tf.Tensor4D {
  const B = x.shape[0];
  if (ks.length !== B) throw new Error(`rotateEach: ${ks.length} turns for ${B} images`);
  return tf.tidy(() => {
    const all = tf.concat([0, 1, 2, 3].map((k) => rot90(x, k)), 0);
    const idx = tf.tensor1d(Array.from(ks, (k, b) => (((k % 4) + 4) % 4) * B + b), 'int32');
    return tf.gather(all, idx) as tf.Tensor4D;
  });
}
