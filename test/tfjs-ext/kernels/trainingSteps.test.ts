import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { rng, rand, ints, toTensor, expectClose, live, gradsOn, useTrainingKernels } from './harness';

useTrainingKernels();

describe('training steps: wasm gradients equal cpu', () => {
  it('gather (embedding lookup) gradient', async () => {
    const before = live();
    const params = { table: rand([50, 8]) };
    const ids = ints([4, 6], Array.from({ length: 24 }, () => rng.int(50)));
    ids.values[3] = ids.values[0]!; // a repeated id must accumulate
    const target = rand([4, 6, 8]);
    const loss = (p: Record<string, tf.Tensor>) => tf.sum(tf.mul(tf.gather(p.table!, toTensor(ids)), toTensor(target))) as tf.Scalar;
    const want = await gradsOn('cpu', params, loss);
    const got = await gradsOn('wasm', params, loss);
    expectClose(got.table!, want.table!, 'table');
    expect(live()).toEqual(before);
  });

  it('a small conv net (conv s1/s2, resize, maxPool, depthToSpace, linear, logSoftmax) gradient', async () => {
    const before = live();
    const params = {
      c1: rand([3, 3, 1, 4]),
      b1: rand([4]),
      c2: rand([3, 3, 4, 8]),
      c3: rand([3, 3, 2, 6]),
      c4: rand([3, 3, 6, 6]),
      w: rand([6, 5]),
      emb: rand([10, 6]),
    };
    const x = rand([3, 8, 8, 1]);
    const labels = ints([3], [1, 4, 0]);
    const tokens = ints([3], [2, 9, 2]);
    const loss = (p: Record<string, tf.Tensor>) => {
      let h = tf.leakyRelu(tf.add(tf.conv2d(toTensor(x) as tf.Tensor4D, p.c1 as tf.Tensor4D, 1, 'same'), p.b1!), 0.2) as tf.Tensor4D;
      h = tf.relu(tf.conv2d(h, p.c2 as tf.Tensor4D, 2, 'same')); // [3,4,4,8]
      h = tf.depthToSpace(h, 2); // [3,8,8,2]
      h = tf.conv2d(h, p.c3 as tf.Tensor4D, 2, 'valid'); // [3,3,3,6]
      h = tf.image.resizeNearestNeighbor(h, [6, 6]);
      h = tf.maxPool(tf.conv2d(h, p.c4 as tf.Tensor4D, 1, 'same'), 2, 2, 'valid'); // [3,3,3,6]
      const feat = tf.add(tf.mean(h, [1, 2]), tf.gather(p.emb!, toTensor(tokens))); // [3,6]
      const logits = tf.matMul(feat, p.w!); // [3,5]
      return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(toTensor(labels), 5), tf.logSoftmax(logits)), 1))) as tf.Scalar;
    };
    const want = await gradsOn('cpu', params, loss);
    const got = await gradsOn('wasm', params, loss);
    for (const k of Object.keys(params)) expectClose(got[k]!, want[k]!, k);
    expect(live()).toEqual(before);
  });
});
