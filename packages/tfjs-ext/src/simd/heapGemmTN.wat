;; C = A^T B for tall A [K, M] and B [K, N] (a dense layer's weight gradient: x^T dy over all positions) with
;; WebAssembly SIMD128, in the wasm backend's heap (the module imports tfjs's memory): A is read as it lies, where the
;; XNNPACK route first transposes A and packs B anew on every call. Compiled to heapGemmTNWasm.ts by
;; `npx tsx tools/src/buildWasm.ts` (wabt), once as written and once importing a shared memory.
;;
;; gemmtn(a, b, c, K, M, N): byte offsets of A, B, C (all row-major float32); M % 4 == 0, N % 8 == 0.
;; C[m, n] = (((0 + A[0,m] B[0,n]) + A[1,m] B[1,n]) + ...) + A[K-1,m] B[K-1,n]: k ascending, one float32 multiply
;; and one add per term (no fused multiply-add). 4 x 8 blocks of C in registers; k in blocks of 128 rows, so the
;; rows of A and B a block reads stay in cache while every block of C passes over them (C keeps the partial sums).
(module
  (import "env" "memory" (memory 1))
  (func (export "gemmtn") (param $a i32) (param $b i32) (param $c i32) (param $K i32) (param $M i32) (param $N i32)
    (local $k0 i32) (local $kn i32) (local $k i32) (local $m i32) (local $n i32) (local $pa i32) (local $pb i32) (local $pc i32)
    (local $rowA i32) (local $rowB i32) (local $av v128) (local $b0 v128) (local $b1 v128) (local $x v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $rowA (i32.shl (local.get $M) (i32.const 2)))
    (local.set $rowB (i32.shl (local.get $N) (i32.const 2)))
    (local.set $k0 (i32.const 0))
    (block $kbDone
      (loop $kbs
        (br_if $kbDone (i32.ge_u (local.get $k0) (local.get $K)))
        (local.set $kn (i32.sub (local.get $K) (local.get $k0)))
        (if (i32.gt_u (local.get $kn) (i32.const 128)) (then (local.set $kn (i32.const 128))))
        (local.set $m (i32.const 0))
        (block $mDone
          (loop $ms
            (br_if $mDone (i32.ge_u (local.get $m) (local.get $M)))
            (local.set $n (i32.const 0))
            (block $nDone
              (loop $ns
                (br_if $nDone (i32.ge_u (local.get $n) (local.get $N)))
                (local.set $pc (i32.add (local.get $c) (i32.shl (i32.add (i32.mul (local.get $m) (local.get $N)) (local.get $n)) (i32.const 2))))
                (if (i32.eqz (local.get $k0))
                  (then
                    (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c01 (v128.const i32x4 0 0 0 0))
                    (local.set $c10 (v128.const i32x4 0 0 0 0)) (local.set $c11 (v128.const i32x4 0 0 0 0))
                    (local.set $c20 (v128.const i32x4 0 0 0 0)) (local.set $c21 (v128.const i32x4 0 0 0 0))
                    (local.set $c30 (v128.const i32x4 0 0 0 0)) (local.set $c31 (v128.const i32x4 0 0 0 0)))
                  (else
                    (local.set $c00 (v128.load (local.get $pc)))
                    (local.set $c01 (v128.load offset=16 (local.get $pc)))
                    (local.set $c10 (v128.load (i32.add (local.get $pc) (local.get $rowB))))
                    (local.set $c11 (v128.load offset=16 (i32.add (local.get $pc) (local.get $rowB))))
                    (local.set $c20 (v128.load (i32.add (local.get $pc) (i32.shl (local.get $rowB) (i32.const 1)))))
                    (local.set $c21 (v128.load offset=16 (i32.add (local.get $pc) (i32.shl (local.get $rowB) (i32.const 1)))))
                    (local.set $c30 (v128.load (i32.add (local.get $pc) (i32.mul (local.get $rowB) (i32.const 3)))))
                    (local.set $c31 (v128.load offset=16 (i32.add (local.get $pc) (i32.mul (local.get $rowB) (i32.const 3)))))))
                (local.set $pa (i32.add (local.get $a) (i32.shl (i32.add (i32.mul (local.get $k0) (local.get $M)) (local.get $m)) (i32.const 2))))
                (local.set $pb (i32.add (local.get $b) (i32.shl (i32.add (i32.mul (local.get $k0) (local.get $N)) (local.get $n)) (i32.const 2))))
                (local.set $k (local.get $kn))
                (block $kDone
                  (loop $ks
                    (br_if $kDone (i32.eqz (local.get $k)))
                    (local.set $av (v128.load (local.get $pa)))
                    (local.set $b0 (v128.load (local.get $pb)))
                    (local.set $b1 (v128.load offset=16 (local.get $pb)))
                    (local.set $x (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $av) (local.get $av)))
                    (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
                    (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
                    (local.set $x (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $av) (local.get $av)))
                    (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
                    (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
                    (local.set $x (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $av) (local.get $av)))
                    (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
                    (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
                    (local.set $x (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $av) (local.get $av)))
                    (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
                    (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
                    (local.set $pa (i32.add (local.get $pa) (local.get $rowA)))
                    (local.set $pb (i32.add (local.get $pb) (local.get $rowB)))
                    (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                    (br $ks)))
                (v128.store (local.get $pc) (local.get $c00))
                (v128.store offset=16 (local.get $pc) (local.get $c01))
                (local.set $pc (i32.add (local.get $pc) (local.get $rowB)))
                (v128.store (local.get $pc) (local.get $c10))
                (v128.store offset=16 (local.get $pc) (local.get $c11))
                (local.set $pc (i32.add (local.get $pc) (local.get $rowB)))
                (v128.store (local.get $pc) (local.get $c20))
                (v128.store offset=16 (local.get $pc) (local.get $c21))
                (local.set $pc (i32.add (local.get $pc) (local.get $rowB)))
                (v128.store (local.get $pc) (local.get $c30))
                (v128.store offset=16 (local.get $pc) (local.get $c31))
                (local.set $n (i32.add (local.get $n) (i32.const 8)))
                (br $ns)))
            (local.set $m (i32.add (local.get $m) (i32.const 4)))
            (br $ms)))
        (local.set $k0 (i32.add (local.get $k0) (local.get $kn)))
        (br $kbs)))))
