import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { composite, type TensorBackend } from '@factorgen/tfjs-ext/kernels/compose';
import { conv2dBackpropFilterImpl } from '@factorgen/tfjs-ext/kernels/shared/Conv2DBackpropFilter';

/**
 * CPU milliseconds per call of the wasm Conv2DBackpropFilter registered now against the Conv2D composite
 * (conv2dBackpropFilter.ts), on the shapes of the tokenizer's training step (B 64, 28x28, channels 24/48, the
 * discriminator's 4x4 stride-2 convs), and the largest difference between the two relative to the largest |dW|.
 * CPU time (process.cpuUsage), not wall time: the figure that holds on a loaded machine.
 * Run: `npx tsx bench/convGrad.ts [--reps 5] [--threads N]`.
 */
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const reps = arg('--reps', 5);
await initBackend('wasm', { threads: arg('--threads', 1) });

// [x shape, kernel size, cout, stride]
const cases: [[number, number, number, number], number, number, number][] = [
  [[64, 28, 28, 48], 3, 48, 1],
  [[64, 28, 28, 24], 3, 24, 1],
  [[64, 28, 28, 48], 3, 24, 1],
  [[64, 14, 14, 48], 3, 48, 1],
  [[64, 14, 14, 24], 3, 48, 1],
  [[64, 7, 7, 48], 3, 48, 1],
  [[64, 28, 28, 24], 3, 1, 1],
  [[64, 28, 28, 1], 3, 24, 1],
  [[64, 28, 28, 24], 3, 24, 2],
  [[64, 14, 14, 48], 3, 48, 2],
  [[64, 14, 14, 32], 4, 64, 2],
  [[64, 28, 28, 1], 4, 32, 2],
];

function cpuMs(f: () => void): number {
  f();
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / reps;
}

for (const [xs, k, co, stride] of cases) {
  const x = tf.randomNormal(xs, 0, 1, 'float32', 1);
  const attrs = { strides: [stride, stride], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [k, k, xs[3], co] };
  const info = tf.backend_util.computeConv2DInfo(xs, [k, k, xs[3], co], stride, 1, 'same');
  const dy = tf.randomNormal(info.outShape, 0, 1, 'float32', 2);
  const ours = () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  const old = () => {
    const out = composite(tf.backend() as TensorBackend, 'wasm', (s) => conv2dBackpropFilterImpl(s, x, dy, attrs as unknown as tf.NamedAttrMap));
    return tf.engine().makeTensorFromTensorInfo(out);
  };
  const a = ours();
  const b = old();
  const [va, vb] = [a.dataSync(), b.dataSync()];
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < vb.length; i++) {
    scale = Math.max(scale, Math.abs(vb[i]!));
    diff = Math.max(diff, Math.abs(va[i]! - vb[i]!));
  }
  a.dispose();
  b.dispose();
  const msNew = cpuMs(() => ours().dispose());
  const msOld = cpuMs(() => old().dispose());
  const gflop = (2 * info.outShape.reduce((p, q) => p * q, 1) * k * k * xs[3]) / 1e9;
  console.log(
    `${JSON.stringify(xs)} k${k} co${co} s${stride}: registered ${msNew.toFixed(1)} ms (${(gflop / msNew * 1e3).toFixed(1)} GFLOP/s), ` +
      `Conv2D composite ${msOld.toFixed(1)} ms (${(gflop / msOld * 1e3).toFixed(1)}), x${(msOld / msNew).toFixed(2)}, max |diff| / max |dW| ${(diff / scale).toExponential(1)}`,
  );
  x.dispose();
  dy.dispose();
}
