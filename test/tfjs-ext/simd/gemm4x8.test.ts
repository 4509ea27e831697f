/**
 * The 4 x 8 block SIMD128 product (packages/tfjs-ext/src/kernels/gemm4x8.*) equals a sequential float32 loop bit for bit
 * (same terms, same order, no fused multiply-add), also with a left-operand row stride larger than K. The committed
 * binary is checked against the .wat in smallBatchMatMul.test.ts (all of buildWasm's kernels); its use in the wasm
 * Conv2DBackpropFilter is checked against the cpu backend in test/tfjs-ext/kernels/conv2dBackprop.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { gemm4x8Kernel, gemm4x8Memory } from '@factorgen/tfjs-ext/simd/gemm4x8';
import { Rng } from '@factorgen/nn';

describe('gemm4x8 (WebAssembly SIMD128)', () => {
  it('equals a sequential float32 loop bit for bit, with row strides above K and blocks of 4 rows and 8 columns', () => {
    const k = gemm4x8Kernel();
    expect(k).not.toBeNull();
    const rng = new Rng('gemm4x8');
    const shapes: [number, number, number, number][] = [
      [4, 1, 8, 1], [4, 7, 8, 7], [8, 33, 16, 40], [12, 100, 24, 103], [48, 300, 48, 317], [4, 5, 64, 9],
    ];
    for (const [M, K, N, lda] of shapes) {
      // values of mixed magnitude so that any change of summation order would show in the bits
      const a = Float32Array.from({ length: M * lda }, (_, i) => (rng.next() * 2 - 1) * 10 ** ((i % 5) - 2));
      const b = Float32Array.from({ length: K * N }, () => rng.next() * 2 - 1);
      const [aAt, bAt] = [3, 3 + a.length]; // unaligned offsets (floats), as the conv kernel's shifted rows are
      const cAt = bAt + b.length;
      const mem = gemm4x8Memory(k!, 4 * (cAt + M * N));
      mem.set(a, aAt);
      mem.set(b, bAt);
      k!.gemm(4 * aAt, lda, 4 * bAt, 4 * cAt, M, K, N);
      const got = Array.from(new Float32Array(k!.memory.buffer, 4 * cAt, M * N));
      const want = new Float32Array(M * N);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let t = 0; t < K; t++) s = Math.fround(s + Math.fround(a[i * lda + t]! * b[t * N + j]!));
          want[i * N + j] = s;
        }
      }
      expect(got, `[${M}, ${K}] (stride ${lda}) @ [${K}, ${N}]`).toEqual(Array.from(want));
    }
  });
});
