import * as tf from '@tensorflow/tfjs';

/** Rows per chunk so that a [rows, V] block of logits holds about 2^22 floats (16 MB). */
function chunkRows(N: number, V: number): number {
  return Math.max(1, Math.min(N, Math.floor((1 << 22) / Math.max(1, V))));
}

/**
 * Softmax cross-entropy of the logits x W + b against integer targets, fused with the output layer: the logits are
 * made one row chunk at a time, in the forward pass and again in a custom gradient, so the tape keeps x, W and b
 * only instead of the [N, V] logits, log-probabilities, one-hot targets and their gradients (several copies of
 * N x V floats: 200 MB each at N = 3136, V = 16384). Gradient: dlogits = (softmax - onehot) / N.
 * x: [N, C], w: [C, V], b: [V], targets: int32 [N] in [0, V) -> float32 [2]: [mean cross-entropy (nats), accuracy of
 * the argmax (first index on ties)]; the gradient flows from the first element only. rows: rows per chunk (default:
 * about 2^22 logits per chunk).
 */
export function linearCrossEntropy(
  x: tf.Tensor2D,
  w: tf.Tensor2D,
  b: tf.Tensor1D,
  targets: tf.Tensor1D,
  rows = chunkRows(x.shape[0], w.shape[1]),
): tf.Tensor1D {
  const [N, C] = x.shape;
  const V = w.shape[1];
  if (w.shape[0] !== C || b.shape[0] !== V || targets.shape[0] !== N || targets.dtype !== 'int32') {
    throw new Error(`linearCrossEntropy: x [${x.shape}], w [${w.shape}], b [${b.shape}], targets ${targets.dtype} [${targets.shape}] do not fit`);
  }
  const chunk = <T extends tf.Tensor>(t: T, r: number): T =>
    (rows >= N ? t : tf.slice(t, r, Math.min(rows, N - r))) as T;
  const logitsOf = (xc: tf.Tensor2D, wt: tf.Tensor2D, bt: tf.Tensor1D) => tf.add(tf.matMul(xc, wt), bt) as tf.Tensor2D;
  const op = tf.customGrad((xIn, wIn, bIn, tIn, save) => {
    const [xt, wt, bt, tt] = [xIn, wIn, bIn, tIn] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
    let ce: tf.Tensor = tf.scalar(0);
    let hits: tf.Tensor = tf.scalar(0);
    for (let r = 0; r < N; r += rows) {
      const [ce1, hits1] = tf.tidy(() => {
        const logits = logitsOf(chunk(xt, r), wt, bt);
        const tc = chunk(tt, r);
        const picked = tf.sum(tf.mul(logits, tf.oneHot(tc, V)), 1);
        const lse = tf.logSumExp(logits, 1);
        const right = tf.cast(tf.equal(tf.argMax(logits, 1), tc), 'float32');
        return [tf.add(ce, tf.sum(tf.sub(lse, picked))), tf.add(hits, tf.sum(right))];
      });
      tf.dispose([ce, hits]);
      [ce, hits] = [ce1!, hits1!];
    }
    (save as tf.GradSaveFunc)([xt, wt, bt, tt]);
    return {
      value: tf.div(tf.stack([ce, hits]), N) as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, ws, bs, ts] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const scale = tf.div(tf.slice(dy as tf.Tensor1D, 0, 1), N);
        const dx: tf.Tensor[] = [];
        let dw: tf.Tensor = tf.zerosLike(ws);
        let db: tf.Tensor = tf.zerosLike(bs);
        for (let r = 0; r < N; r += rows) {
          const [dxc, dw1, db1] = tf.tidy(() => {
            const xc = chunk(xs, r);
            const g = tf.mul(tf.sub(tf.softmax(logitsOf(xc, ws, bs)), tf.oneHot(chunk(ts, r), V)), scale) as tf.Tensor2D;
            return [tf.matMul(g, ws, false, true), tf.add(dw, tf.matMul(xc, g, true, false)), tf.add(db, tf.sum(g, 0))];
          });
          tf.dispose([dw, db]);
          dx.push(dxc!);
          [dw, db] = [dw1!, db1!];
        }
        return [dx.length === 1 ? dx[0]! : tf.concat(dx), dw, db, tf.zerosLike(ts).cast('float32')];
      },
    };
  });
  return op(x, w, b, targets) as tf.Tensor1D;
}
