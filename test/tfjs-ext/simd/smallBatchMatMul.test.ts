/**
 * The SIMD128 batched-matMul kernel (packages/tfjs-ext/src/kernels/smallBatchMatMul.*): the committed binary is the
 * compiled .wat, and its products equal a sequential float32 loop bit for bit (same terms, same order, no fused
 * multiply-add). Its use inside the wasm BatchMatMul is checked against the cpu backend in test/tfjs-ext/kernels/batchMatMul.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { smallBatchMatMul, smallBatchMatMulKernel } from '@factorgen/tfjs-ext/simd/smallBatchMatMul';
import { kernelModuleSource, wasmKernels } from '@factorgen/tools/buildWasm';
import { Rng } from '@factorgen/nn';

const root = path.resolve(__dirname, '..', '..', '..');

/** C[p] = A[p] @ B[p] with one float32 rounding per multiply and per add, k ascending. */
function reference(a: Float32Array, b: Float32Array, batch: number, M: number, K: number, N: number): Float32Array {
  const out = new Float32Array(batch * M * N);
  for (let p = 0; p < batch; p++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s = Math.fround(s + Math.fround(a[(p * M + i) * K + k]! * b[(p * K + k) * N + j]!));
        out[(p * M + i) * N + j] = s;
      }
    }
  }
  return out;
}

describe('smallBatchMatMul (WebAssembly SIMD128)', () => {
  it('the committed module is the compiled .wat (rerun tools/src/buildWasm.ts after editing it)', async () => {
    for (const k of wasmKernels) {
      const want = await kernelModuleSource(k);
      expect(fs.readFileSync(path.join(root, k.ts), 'utf8'), k.ts).toBe(want);
    }
  });

  it('equals a sequential float32 loop bit for bit, for every column count mod 16 and edge sizes', () => {
    expect(smallBatchMatMulKernel()).not.toBeNull();
    const rng = new Rng('small-bmm');
    const shapes: [number, number, number, number][] = [
      [1, 1, 1, 1], [3, 2, 5, 3], [2, 7, 1, 16], [4, 5, 9, 17], [2, 49, 32, 49], [2, 49, 49, 32], [6, 2, 2, 32], [5, 2, 32, 2], [1, 3, 4, 35],
    ];
    for (const [batch, M, K, N] of shapes) {
      const a = Float32Array.from({ length: batch * M * K }, () => rng.next() * 2 - 1);
      const b = Float32Array.from({ length: batch * K * N }, () => rng.next() * 2 - 1);
      const got = smallBatchMatMul(a, b, batch, M, K, N);
      expect(got.length).toBe(batch * M * N);
      expect(Array.from(got), `[${batch}, ${M}, ${K}] @ [${batch}, ${K}, ${N}]`).toEqual(Array.from(reference(a, b, batch, M, K, N)));
    }
  });

  it('refuses operands whose sizes do not match the shapes', () => {
    expect(() => smallBatchMatMul(new Float32Array(6), new Float32Array(6), 1, 2, 3, 3)).toThrow(
      'smallBatchMatMul: operands of 6 and 6 values do not match [1, 2, 3] @ [1, 3, 3]',
    );
  });
});
