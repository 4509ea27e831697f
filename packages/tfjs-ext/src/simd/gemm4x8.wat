;; Float32 product in 4 x 8 register blocks with WebAssembly SIMD128, for the wasm Conv2DBackpropFilter
;; (wasmConv2dBackpropFilter.ts), whose left operand is rows of phase planes at a row stride of its own. Compiled to
;; gemm4x8Wasm.ts by `npx tsx tools/src/buildWasm.ts` (wabt); test/tfjs-ext/simd/gemm4x8.test.ts checks the two agree.
;;
;; gemm(a, lda, b, c, M, K, N): C = A @ B with A [M, K] at row stride lda (floats), B [K, N] and C [M, N] row-major,
;; float32 at byte offsets a, b, c. M must be a multiple of 4 and N of 8 (callers pad). Each C element is
;; sum_k A[i,k] * B[k,j] accumulated in k order from 0, one f32 multiply and one f32 add per term (no fused
;; multiply-add): equal bit for bit to a sequential float32 loop. Per k, a block loads 4 A values (splat) and 8 of
;; B (two vectors) for 32 multiply-adds, against 1 + 16 for 16 in smallBatchMatMul.wat's single-row blocks.
(module
  (memory (export "memory") 1)
  (func (export "gemm") (param $a i32) (param $lda i32) (param $b i32) (param $c i32) (param $M i32) (param $K i32) (param $N i32)
    (local $i i32) (local $j i32) (local $k i32) (local $rowA i32) (local $rowB i32) (local $a0 i32) (local $bp i32) (local $cp i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128) (local $b0 v128) (local $b1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $rowA (i32.shl (local.get $lda) (i32.const 2)))
    (local.set $rowB (i32.shl (local.get $N) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $M)))
        (local.set $j (i32.const 0))
        (block $colsDone
          (loop $cols
            (br_if $colsDone (i32.ge_u (local.get $j) (local.get $N)))
            (local.set $c00 (v128.const i32x4 0 0 0 0))
            (local.set $c01 (v128.const i32x4 0 0 0 0))
            (local.set $c10 (v128.const i32x4 0 0 0 0))
            (local.set $c11 (v128.const i32x4 0 0 0 0))
            (local.set $c20 (v128.const i32x4 0 0 0 0))
            (local.set $c21 (v128.const i32x4 0 0 0 0))
            (local.set $c30 (v128.const i32x4 0 0 0 0))
            (local.set $c31 (v128.const i32x4 0 0 0 0))
            (local.set $a0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rowA))))
            (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $k (local.get $K))
            (block $kDone
              (loop $ks
                (br_if $kDone (i32.eqz (local.get $k)))
                (local.set $b0 (v128.load (local.get $bp)))
                (local.set $b1 (v128.load offset=16 (local.get $bp)))
                (local.set $x0 (f32x4.splat (f32.load (local.get $a0))))
                (local.set $x1 (f32x4.splat (f32.load (i32.add (local.get $a0) (local.get $rowA)))))
                (local.set $x2 (f32x4.splat (f32.load (i32.add (local.get $a0) (i32.shl (local.get $rowA) (i32.const 1))))))
                (local.set $x3 (f32x4.splat (f32.load (i32.add (local.get $a0) (i32.mul (local.get $rowA) (i32.const 3))))))
                (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x0) (local.get $b0))))
                (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x0) (local.get $b1))))
                (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x1) (local.get $b0))))
                (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x1) (local.get $b1))))
                (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x2) (local.get $b0))))
                (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x2) (local.get $b1))))
                (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x3) (local.get $b0))))
                (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x3) (local.get $b1))))
                (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
                (local.set $bp (i32.add (local.get $bp) (local.get $rowB)))
                (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                (br $ks)))
            (local.set $cp (i32.add (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $rowB))) (i32.shl (local.get $j) (i32.const 2))))
            (v128.store (local.get $cp) (local.get $c00))
            (v128.store offset=16 (local.get $cp) (local.get $c01))
            (local.set $cp (i32.add (local.get $cp) (local.get $rowB)))
            (v128.store (local.get $cp) (local.get $c10))
            (v128.store offset=16 (local.get $cp) (local.get $c11))
            (local.set $cp (i32.add (local.get $cp) (local.get $rowB)))
            (v128.store (local.get $cp) (local.get $c20))
            (v128.store offset=16 (local.get $cp) (local.get $c21))
            (local.set $cp (i32.add (local.get $cp) (local.get $rowB)))
            (v128.store (local.get $cp) (local.get $c30))
            (v128.store offset=16 (local.get $cp) (local.get $c31))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $cols)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows)))))
