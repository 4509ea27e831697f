import * as tf from '@tensorflow/tfjs';

/**
 * GroupNorm's statistics step (Wu & He 2018, "Group Normalization"): x: [B,N,G,Cg] (N positions, G groups of Cg
 * channels) -> (x - mean) / sqrt(var + eps), mean and (biased) variance per sample and group over (N, Cg).
 *
 * Same float operations, element for element, as the plain composition on [B,H,W,G,Cg]
 * (mean, sub, square, mean, rsqrt, mul) and its tfjs gradient, so values and gradients are bit-identical to it
 * (test/tokenizer/groupNorm.test.ts); only the layouts differ. The wasm backend's binary ops broadcast a
 * [B,1,1,G,1] operand through a generic per-element index loop (~5x the time of a same-shape op), and Mean's tfjs
 * gradient multiplies by a full-size tensor of ones; here each group statistic is first repeated over its Cg channels
 * ([B,1,G*Cg], tiny) so every full-size op is a [B,N,C] x [B,1,C] broadcast, which is fast, and Mean's gradient is
 * dy / count repeated by one such broadcast.
 */
export function groupNormalize(x: tf.Tensor4D, eps: number): tf.Tensor4D {
  const mean = groupMean(x);
  const d = groupBinary('sub', x, mean);
  const variance = groupMean(tf.square(d));
  return groupBinary('mul', d, tf.rsqrt(tf.add(variance, eps)) as tf.Tensor4D);
}

/** s: [B,1,G,1] -> [B,1,G*Cg], each group's value repeated over its Cg channels. */
function perChannel(s: tf.Tensor, cg: number): tf.Tensor3D {
  const [B, , G] = s.shape as [number, number, number, number];
  return tf.reshape(tf.tile(s, [1, 1, 1, cg]), [B, 1, G * cg]);
}

/** mean over axes 1 and 3, kept: [B,N,G,Cg] -> [B,1,G,1]; gradient: dy / (N*Cg) repeated over the group (tfjs's (dy*1)/count, the same value). */
function groupMean(x: tf.Tensor4D): tf.Tensor4D {
  const [B, N, G, cg] = x.shape;
  const op = tf.customGrad((xIn) => ({
    value: tf.mean(xIn as tf.Tensor4D, [1, 3], true) as tf.Tensor4D,
    // Repeated over the N positions by a broadcast multiply with ones (exact): wasm's Tile is ~100x slower.
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.reshape(tf.mul(tf.ones([B, N, G * cg]), perChannel(tf.div(dy as tf.Tensor, N * cg), cg)), [B, N, G, cg]),
  }));
  return op(x) as tf.Tensor4D;
}

/**
 * x - s or x * s for x: [B,N,G,Cg], s: [B,1,G,1] -> [B,N,G,Cg]. Gradients as tfjs's Sub and Mul: dx = dy (or dy * s),
 * ds = -sum(dy) (or sum(dy * x)) over axes 1 and 3 (the same summation order as over [1,2,4] of [B,H,W,G,Cg]).
 */
function groupBinary(kind: 'sub' | 'mul', x: tf.Tensor4D, s: tf.Tensor4D): tf.Tensor4D {
  const [B, N, G, cg] = x.shape;
  const C = G * cg;
  const op = tf.customGrad((xIn, sIn, save) => {
    const [xt, st] = [xIn, sIn] as [tf.Tensor4D, tf.Tensor4D];
    (save as tf.GradSaveFunc)([xt, st]);
    const x3 = tf.reshape(xt, [B, N, C]);
    const s3 = perChannel(st, cg);
    return {
      value: tf.reshape(kind === 'sub' ? tf.sub(x3, s3) : tf.mul(x3, s3), [B, N, G, cg]) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = dy as tf.Tensor4D;
        const [xs, ss] = saved as [tf.Tensor4D, tf.Tensor4D];
        if (kind === 'sub') return [g, tf.neg(tf.sum(g, [1, 3], true))];
        return [tf.reshape(tf.mul(tf.reshape(g, [B, N, C]), perChannel(ss, cg)), [B, N, G, cg]), tf.sum(tf.mul(g, xs), [1, 3], true)];
      },
    };
  });
  return op(x, s) as tf.Tensor4D;
}
