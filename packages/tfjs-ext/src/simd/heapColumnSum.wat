;; Column sums of a float32 [R, C] matrix in the wasm backend's own heap (the module imports tfjs's memory, so the
;; operand is read where it lies: no copy in, none out), with WebAssembly SIMD128: Sum over leading axes (bias and
;; norm-scale gradients, [B,H,W,C] -> [C]). Compiled to heapColumnSumWasm.ts by `npx tsx tools/src/buildWasm.ts`
;; (wabt), once as written and once importing a shared memory (the threaded build's heap).
;;
;; colsum(x, out, R, C): out[c] = (((0 + x[0,c]) + x[1,c]) + ...) + x[R-1,c], one float32 add per row in row order:
;; the built-in Sum's order after its transpose, so the result is bit-identical to it. Columns go 32 and then 4 at a
;; time in SIMD lanes, the last C mod 4 one at a time with the same scalar arithmetic.
(module
  (import "env" "memory" (memory 1))
  (func (export "colsum") (param $x i32) (param $out i32) (param $R i32) (param $C i32)
    (local $c i32) (local $r i32) (local $p i32) (local $rowB i32) (local $s f32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $rowB (i32.shl (local.get $C) (i32.const 2)))
    (local.set $c (i32.const 0))
    ;; 32 columns at a time: eight accumulators, one row of 128 bytes per step
    (block $c32Done
      (loop $c32
        (br_if $c32Done (i32.gt_u (i32.add (local.get $c) (i32.const 32)) (local.get $C)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $a4 (v128.const i32x4 0 0 0 0))
        (local.set $a5 (v128.const i32x4 0 0 0 0))
        (local.set $a6 (v128.const i32x4 0 0 0 0))
        (local.set $a7 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $r (local.get $R))
        (block $rDone
          (loop $rows
            (br_if $rDone (i32.eqz (local.get $r)))
            (local.set $a0 (f32x4.add (local.get $a0) (v128.load (local.get $p))))
            (local.set $a1 (f32x4.add (local.get $a1) (v128.load offset=16 (local.get $p))))
            (local.set $a2 (f32x4.add (local.get $a2) (v128.load offset=32 (local.get $p))))
            (local.set $a3 (f32x4.add (local.get $a3) (v128.load offset=48 (local.get $p))))
            (local.set $a4 (f32x4.add (local.get $a4) (v128.load offset=64 (local.get $p))))
            (local.set $a5 (f32x4.add (local.get $a5) (v128.load offset=80 (local.get $p))))
            (local.set $a6 (f32x4.add (local.get $a6) (v128.load offset=96 (local.get $p))))
            (local.set $a7 (f32x4.add (local.get $a7) (v128.load offset=112 (local.get $p))))
            (local.set $p (i32.add (local.get $p) (local.get $rowB)))
            (local.set $r (i32.sub (local.get $r) (i32.const 1)))
            (br $rows)))
        (local.set $p (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2))))
        (v128.store (local.get $p) (local.get $a0))
        (v128.store offset=16 (local.get $p) (local.get $a1))
        (v128.store offset=32 (local.get $p) (local.get $a2))
        (v128.store offset=48 (local.get $p) (local.get $a3))
        (v128.store offset=64 (local.get $p) (local.get $a4))
        (v128.store offset=80 (local.get $p) (local.get $a5))
        (v128.store offset=96 (local.get $p) (local.get $a6))
        (v128.store offset=112 (local.get $p) (local.get $a7))
        (local.set $c (i32.add (local.get $c) (i32.const 32)))
        (br $c32)))
    ;; then 4 at a time
    (block $c4Done
      (loop $c4
        (br_if $c4Done (i32.gt_u (i32.add (local.get $c) (i32.const 4)) (local.get $C)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $r (local.get $R))
        (block $r4Done
          (loop $rows4
            (br_if $r4Done (i32.eqz (local.get $r)))
            (local.set $a0 (f32x4.add (local.get $a0) (v128.load (local.get $p))))
            (local.set $p (i32.add (local.get $p) (local.get $rowB)))
            (local.set $r (i32.sub (local.get $r) (i32.const 1)))
            (br $rows4)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2))) (local.get $a0))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $c4)))
    ;; the last C mod 4 columns one at a time
    (block $c1Done
      (loop $c1
        (br_if $c1Done (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $s (f32.const 0))
        (local.set $p (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $r (local.get $R))
        (block $r1Done
          (loop $rows1
            (br_if $r1Done (i32.eqz (local.get $r)))
            (local.set $s (f32.add (local.get $s) (f32.load (local.get $p))))
            (local.set $p (i32.add (local.get $p) (local.get $rowB)))
            (local.set $r (i32.sub (local.get $r) (i32.const 1)))
            (br $rows1)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2))) (local.get $s))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $c1)))))
