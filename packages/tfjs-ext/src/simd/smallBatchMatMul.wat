;; Batched product of small float32 matrices with WebAssembly SIMD128, for BatchMatMul shapes below the size where a
;; loop of XNNPACK products pays (attention's [B*heads, L, dh] products). Compiled to smallBatchMatMulWasm.ts by
;; `npx tsx tools/src/buildWasm.ts` (wabt); test/tfjs-ext/simd/smallBatchMatMul.test.ts checks the two agree.
;;
;; bmm(a, b, c, batch, M, K, N): for each of `batch` problems, C = A @ B with A [M, K], B [K, N], C [M, N], all
;; row-major float32 at byte offsets a, b, c (problems contiguous). Each C element is sum_k A[i,k] * B[k,j]
;; accumulated in k order, one f32 multiply and one f32 add per term (no fused multiply-add): columns go 16 and then
;; 4 at a time in SIMD lanes, the last N mod 4 one at a time with the same scalar arithmetic.
(module
  (memory (export "memory") 1)
  (func (export "bmm") (param $a i32) (param $b i32) (param $c i32) (param $batch i32) (param $M i32) (param $K i32) (param $N i32)
    (local $s f32) (local $i i32) (local $j i32) (local $k i32) (local $ap i32) (local $bp i32) (local $cp i32) (local $rowB i32)
    (local $x v128) (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local.set $rowB (i32.shl (local.get $N) (i32.const 2)))
    (block $done
      (loop $problems
        (br_if $done (i32.eqz (local.get $batch)))
        (local.set $i (i32.const 0))
        (block $rowsDone
          (loop $rows
            (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $M)))
            (local.set $j (i32.const 0))
            ;; 16 columns at a time: four accumulators share each broadcast A[i,k]
            (block $j16Done
              (loop $j16
                (br_if $j16Done (i32.gt_u (i32.add (local.get $j) (i32.const 16)) (local.get $N)))
                (local.set $acc0 (v128.const i32x4 0 0 0 0))
                (local.set $acc1 (v128.const i32x4 0 0 0 0))
                (local.set $acc2 (v128.const i32x4 0 0 0 0))
                (local.set $acc3 (v128.const i32x4 0 0 0 0))
                (local.set $ap (local.get $a))
                (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $k (local.get $K))
                (block $kDone
                  (loop $ks
                    (br_if $kDone (i32.eqz (local.get $k)))
                    (local.set $x (f32x4.splat (f32.load (local.get $ap))))
                    (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $x) (v128.load (local.get $bp)))))
                    (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $x) (v128.load offset=16 (local.get $bp)))))
                    (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $x) (v128.load offset=32 (local.get $bp)))))
                    (local.set $acc3 (f32x4.add (local.get $acc3) (f32x4.mul (local.get $x) (v128.load offset=48 (local.get $bp)))))
                    (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
                    (local.set $bp (i32.add (local.get $bp) (local.get $rowB)))
                    (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                    (br $ks)))
                (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
                (v128.store (local.get $cp) (local.get $acc0))
                (v128.store offset=16 (local.get $cp) (local.get $acc1))
                (v128.store offset=32 (local.get $cp) (local.get $acc2))
                (v128.store offset=48 (local.get $cp) (local.get $acc3))
                (local.set $j (i32.add (local.get $j) (i32.const 16)))
                (br $j16)))
            ;; then 4 at a time
            (block $j4Done
              (loop $j4
                (br_if $j4Done (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $N)))
                (local.set $acc0 (v128.const i32x4 0 0 0 0))
                (local.set $ap (local.get $a))
                (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $k (local.get $K))
                (block $k4Done
                  (loop $k4
                    (br_if $k4Done (i32.eqz (local.get $k)))
                    (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (f32x4.splat (f32.load (local.get $ap))) (v128.load (local.get $bp)))))
                    (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
                    (local.set $bp (i32.add (local.get $bp) (local.get $rowB)))
                    (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                    (br $k4)))
                (v128.store (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $acc0))
                (local.set $j (i32.add (local.get $j) (i32.const 4)))
                (br $j4)))
            ;; the last N mod 4 columns one at a time
            (block $j1Done
              (loop $j1
                (br_if $j1Done (i32.ge_u (local.get $j) (local.get $N)))
                (local.set $s (f32.const 0))
                (local.set $ap (local.get $a))
                (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
                (local.set $k (local.get $K))
                (block $k1Done
                  (loop $k1
                    (br_if $k1Done (i32.eqz (local.get $k)))
                    (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $ap)) (f32.load (local.get $bp)))))
                    (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
                    (local.set $bp (i32.add (local.get $bp) (local.get $rowB)))
                    (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                    (br $k1)))
                (f32.store (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))) (local.get $s))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $j1)))
            ;; next row of A and C
            (local.set $a (i32.add (local.get $a) (i32.shl (local.get $K) (i32.const 2))))
            (local.set $c (i32.add (local.get $c) (local.get $rowB)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $rows)))
        ;; next problem: A and C moved on by their M rows already
        (local.set $b (i32.add (local.get $b) (i32.mul (local.get $K) (local.get $rowB))))
        (local.set $batch (i32.sub (local.get $batch) (i32.const 1)))
        (br $problems)))))
