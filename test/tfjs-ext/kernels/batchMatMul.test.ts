import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { loopMinMacs, simdMaxMacs } from '@factorgen/tfjs-ext/kernels/wasm/BatchMatMul';
import { builtinKernel } from '@factorgen/tfjs-ext';
import { heapGemmTNKernel } from '@factorgen/tfjs-ext/simd/heapGemmTN';
import type { WasmBackend } from '@factorgen/tfjs-ext/kernels/wasm/wasmBackend';
import { rand, toTensor, kernel, expectClose, live, useTrainingKernels } from './harness';

useTrainingKernels();

describe('BatchMatMul (wasm replacement)', () => {
  it('a tall A^T B (a dense weight gradient) runs on the heap kernel and equals the transpose + XNNPACK route bit for bit', async () => {
    await tf.setBackend('wasm');
    expect(heapGemmTNKernel(tf.backend() as WasmBackend)).not.toBeNull();
    // K past one and several 128-row blocks, not a multiple of them; the smallest M and N the kernel takes; a batch dim of 1
    for (const [K, M, N, lead] of [[1024, 4, 8, 0], [1300, 12, 24, 0], [3136, 64, 8, 1], [1029, 8, 16, 1]] as const) {
      const a = rand(lead ? [1, K, M] : [K, M]);
      const b = rand(lead ? [1, K, N] : [K, N]);
      const before = live();
      const got = await kernel('wasm', 'registered', 'BatchMatMul', { a, b }, { transposeA: true, transposeB: false });
      const ref = tf.tidy(() => {
        const aT = tf.transpose(toTensor(a).reshape([K, M])).reshape([1, M, K]);
        const info = builtinKernel('BatchMatMul', 'wasm')!.kernelFunc({ inputs: { a: aT, b: toTensor(b).reshape([1, K, N]) }, backend: tf.backend(), attrs: { transposeA: false, transposeB: false } }) as tf.TensorInfo;
        return Float32Array.from(tf.engine().makeTensorFromTensorInfo(info).dataSync());
      });
      expect(live()).toEqual(before);
      expect(got.shape).toEqual(lead ? [1, M, N] : [M, N]);
      expect(Buffer.from(got.values.buffer).equals(Buffer.from(ref.buffer)), JSON.stringify([K, M, N])).toBe(true);
    }
  });

  it('matches the cpu built-in for every transpose and batch layout', async () => {
    const before = live();
    const big = Math.ceil(Math.cbrt(loopMinMacs)) + 4; // per-batch work above the built-in's threshold (SIMD kernel)
    const huge = Math.ceil(Math.cbrt(simdMaxMacs)) + 4; // above the SIMD kernel's: the loop of XNNPACK products
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 6], [6, 7], false, false],
      [[6, 5], [6, 7], true, false],
      [[5, 6], [7, 6], false, true],
      [[6, 5], [7, 6], true, true],
      [[3, 5, 6], [3, 6, 7], false, false],
      [[3, 6, 5], [3, 7, 6], true, true],
      [[3, 5, 6], [6, 7], false, false],
      [[3, 5, 6], [1, 7, 6], false, true],
      [[5, 6], [3, 6, 7], false, false],
      [[1, 6, 5], [2, 3, 6, 7], true, false],
      [[2, 3, 4, 5], [2, 3, 5, 6], false, false],
      [[2, big, big], [2, big, big], false, true],
      [[3, big, big], [3, big, big], true, false],
      [[2, huge, huge], [2, huge, huge], false, true],
      // attention's shapes: [B, heads, L, dh] @ [B, heads, L, dh]^T and the AR head's [N, heads, K, K] @ [N, heads, K, dh]
      [[2, 3, 7, 5], [2, 3, 9, 5], false, true],
      [[2, 3, 7, 9], [2, 3, 9, 5], false, false],
      [[50, 4, 2, 2], [50, 4, 2, 3], false, false],
      [[4, 1, 6], [4, 6, 1], false, false],
    ];
    for (const [sa, sb, transposeA, transposeB] of cases) {
      const a = rand(sa);
      const b = rand(sb);
      const ref = await kernel('cpu', 'builtin', 'BatchMatMul', { a, b }, { transposeA, transposeB });
      const got = await kernel('wasm', 'registered', 'BatchMatMul', { a, b }, { transposeA, transposeB });
      expectClose(got, ref, JSON.stringify([sa, sb, transposeA, transposeB]));
    }
    expect(live()).toEqual(before);
  });
});
