/**
 * Child process of wasmThreads.test.ts: `tsx wasmThreads.probe.ts stock|threaded N` starts the wasm backend on the
 * stock SIMD build or on the threaded build with N threads, runs a matMul, a conv2d with its gradients and three SGD
 * steps of a small conv net, and prints every result's float32 bits (base64) as one JSON line.
 */
import * as tf from '@tensorflow/tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { registerTrainingKernels } from '../../packages/shared/src/kernels/register';
import { shareSavedTensors } from '../../packages/shared/src/tape/shareSaved';
import { startThreadedWasm } from '../../packages/shared/src/wasmThreads';

const [build, n] = [process.argv[2], Number(process.argv[3] ?? 1)];
tf.enableProdMode();
if (build === 'threaded') await startThreadedWasm(wasm, n);
else if (!(await tf.setBackend('wasm'))) throw new Error('wasm did not start');
// As initBackend does (the kernels the trainers need; it starts the threaded build only for >= 2 threads).
registerTrainingKernels('wasm');
shareSavedTensors();

const bits = (t: tf.Tensor): string => Buffer.from((t.dataSync() as Float32Array).buffer).toString('base64');
const out: Record<string, string | number> = { threads: wasm.getThreadsCount() };
tf.tidy(() => {
  // Sizes well above XNNPACK's tile sizes, so that every thread gets tiles.
  const a = tf.randomNormal([192, 320], 0, 1, 'float32', 1);
  const b = tf.randomNormal([320, 256], 0, 1, 'float32', 2);
  out.matMul = bits(tf.matMul(a, b));
  const x = tf.randomNormal([4, 24, 24, 16], 0, 1, 'float32', 3);
  const w = tf.randomNormal([3, 3, 16, 32], 0, 0.2, 'float32', 4);
  out.conv = bits(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'));
  const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 2, 'same').square().mean());
  const [dx, dw] = g([x, w]);
  out.convGradInput = bits(dx!);
  out.convGradFilter = bits(dw!);
});
// Three SGD steps of conv -> relu -> mean pool -> dense -> softmax cross-entropy.
const w1 = tf.variable(tf.randomNormal([3, 3, 3, 24], 0, 0.3, 'float32', 5));
const w2 = tf.variable(tf.randomNormal([24, 10], 0, 0.3, 'float32', 6));
const xs = tf.randomNormal([32, 16, 16, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
out.initW2 = bits(w2);
const ys = tf.oneHot(tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 10), 'int32'), 10);
for (let step = 0; step < 3; step++) {
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const h = tf.relu(tf.conv2d(xs, w1 as tf.Variable<tf.Rank.R4>, 1, 'same')).mean([1, 2]) as tf.Tensor2D;
      return tf.losses.softmaxCrossEntropy(ys, tf.matMul(h, w2)) as tf.Scalar;
    });
    w1.assign(w1.sub(grads[w1.name]!.mul(0.1)));
    w2.assign(w2.sub(grads[w2.name]!.mul(0.1)));
  });
}
out.trainW1 = bits(w1);
out.trainW2 = bits(w2);
process.stdout.write(JSON.stringify(out) + '\n');
