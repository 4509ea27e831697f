/**
 * Child process of wasmThreads.test.ts: `tsx wasmThreads.probe.ts stock|threaded N` starts the wasm backend on the
 * stock SIMD build or on the threaded build with N threads, runs a matMul, a conv2d with its gradients, attention's
 * batched products with their gradients (our BatchMatMul's SIMD128 kernel, smallBatchMatMul) and three SGD steps of a
 * small conv net a Sum over leading axes, GroupNorm's Mean/Sum over [1, 3] and a tall A^T B (our heap kernels), and prints every result's float32 bits (base64) as one JSON line, with whether our BatchMatMul is the
 * registered one and its SIMD kernel ran, and whether the registered Conv2DBackpropFilter is our grid kernel.
 */
import * as tf from '@tensorflow/tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { registerTrainingKernels } from '@factorgen/tfjs-ext';
import { composite, type TensorBackend } from '@factorgen/tfjs-ext/kernels/compose';
import { conv2dBackpropFilterImpl } from '@factorgen/tfjs-ext/kernels/shared/Conv2DBackpropFilter';
import { wasmConv2dBackpropFilterImpl } from '@factorgen/tfjs-ext/kernels/wasm/Conv2DBackpropFilter';
import { smallBatchMatMulKernel } from '@factorgen/tfjs-ext/simd/smallBatchMatMul';
import { heapColumnSumKernel } from '@factorgen/tfjs-ext/simd/heapColumnSum';
import { heapGroupSumKernel } from '@factorgen/tfjs-ext/simd/heapGroupSum';
import { heapGemmTNKernel } from '@factorgen/tfjs-ext/simd/heapGemmTN';
import type { WasmBackend } from '@factorgen/tfjs-ext/kernels/wasm/wasmBackend';
import { shareSavedTensors } from '@factorgen/tfjs-ext';
import { startThreadedWasm } from '@factorgen/tfjs-ext/node';

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
  // That filter gradient's shape runs on our grid kernel (gemm4x8.wat, one thread): the registered kernel's bits equal a
  // direct call of it and differ from the Conv2D composite's (XNNPACK, on the pool's threads).
  const dy = tf.randomNormal([4, 12, 12, 32], 0, 1, 'float32', 11);
  const attrs = { strides: [2, 2], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [3, 3, 16, 32] } as unknown as tf.NamedAttrMap;
  const direct = (impl: typeof conv2dBackpropFilterImpl) =>
    bits(tf.engine().makeTensorFromTensorInfo(composite(tf.backend() as TensorBackend, 'wasm', (sc) => impl(sc, x, dy, attrs)!)));
  const registeredBits = bits(tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor);
  out.convFilterGrid = Number(registeredBits === direct(wasmConv2dBackpropFilterImpl as typeof conv2dBackpropFilterImpl));
  out.convFilterComposite = Number(registeredBits === direct(conv2dBackpropFilterImpl));
  // Attention's [B*heads, L, dh] products, forward and backward: batches of small products, which our BatchMatMul
  // runs on its SIMD128 kernel. Its own memory starts at one 64 KiB page and grows to hold operands: grown = it ran.
  const pagesBefore = smallBatchMatMulKernel()?.memory.buffer.byteLength ?? 0;
  const q = tf.randomNormal([16, 49, 32], 0, 1, 'float32', 8);
  const k = tf.randomNormal([16, 49, 32], 0, 1, 'float32', 9);
  const v = tf.randomNormal([16, 49, 32], 0, 1, 'float32', 10);
  const attend = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => tf.matMul(tf.softmax(tf.matMul(qq, kk, false, true).mul(0.125)), vv);
  out.attention = bits(attend(q, k, v));
  const [dq, dk, dv] = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => attend(qq, kk, vv).square().mean())([q, k, v]);
  out.attentionGradQ = bits(dq!);
  out.attentionGradK = bits(dk!);
  out.attentionGradV = bits(dv!);
  out.smallBatchMatMulRan = Number((smallBatchMatMulKernel()?.memory.buffer.byteLength ?? 0) > pagesBefore);
  // A bias gradient's Sum over leading axes: our column-sum kernel in the heap itself (the threaded build's is shared).
  out.sumLeading = bits(tf.sum(tf.randomNormal([8, 20, 20, 40], 0, 1, 'float32', 12), [0, 1, 2]));
  out.heapColumnSum = Number(heapColumnSumKernel(tf.backend() as WasmBackend) !== null);
  // GroupNorm's statistics: Mean and Sum over axes [1, 3] on our group-sum kernel in the heap.
  const gx = tf.randomNormal([4, 49, 8, 4], 0, 1, 'float32', 13);
  out.groupStats = bits(tf.concat([tf.mean(gx, [1, 3], true), tf.sum(gx, [1, 3], true)]));
  out.heapGroupSum = Number(heapGroupSumKernel(tf.backend() as WasmBackend) !== null);
  // A dense layer's weight gradient x^T dy over many positions: our A^T B kernel in the heap.
  out.denseWeightGrad = bits(tf.matMul(tf.randomNormal([2048, 8], 0, 1, 'float32', 14), tf.randomNormal([2048, 16], 0, 1, 'float32', 15), true, false));
  out.heapGemmTN = Number(heapGemmTNKernel(tf.backend() as WasmBackend) !== null);
});
const registered = tf.getKernel('BatchMatMul', 'wasm') as (tf.KernelConfig & Record<symbol, unknown>) | undefined;
out.batchMatMulOurs = Number(registered?.[Symbol.for('factorgen.kernel')] === true);
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
