;; Sums and means over axes 1 and 3 of a float32 [A, N, G, c] tensor in the wasm backend's heap (the module imports
;; tfjs's memory): GroupNorm's statistics and their gradients ([B, positions, groups, channels per group] ->
;; [B, 1, G, 1]). The built-in Sum and Mean transpose x to [A, G, N, c] first and then add each output's N*c terms in
;; one sequential chain; here the terms are read where they lie, four groups at a time in independent chains.
;; Compiled to heapGroupSumWasm.ts by `npx tsx tools/src/buildWasm.ts` (wabt), once as written and once importing
;; a shared memory (the threaded build's heap).
;;
;; groupsum(x, out, A, N, G, c, mean): out[a, g] = ((0 + x[a,0,g,0]) + x[a,0,g,1]) + ... + x[a,N-1,g,c-1], one
;; float32 add per term in (n, j) order: the built-in's order after its transpose, so the sums are bit-identical to
;; it; with mean != 0 the sum is then divided by N*c (as a float32), as the built-in Mean does.
(module
  (import "env" "memory" (memory 1))
  (func (export "groupsum") (param $x i32) (param $out i32) (param $A i32) (param $N i32) (param $G i32) (param $c i32) (param $mean i32)
    (local $a i32) (local $g i32) (local $n i32) (local $j i32) (local $p i32) (local $q i32) (local $rowB i32) (local $gB i32)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32) (local $count f32) (local $o i32)
    (local.set $gB (i32.shl (local.get $c) (i32.const 2)))          ;; bytes per group
    (local.set $rowB (i32.mul (local.get $G) (local.get $gB)))      ;; bytes per position
    (local.set $count (f32.convert_i32_u (i32.mul (local.get $N) (local.get $c))))
    (local.set $o (local.get $out))
    (local.set $a (i32.const 0))
    (block $aDone
      (loop $as
        (br_if $aDone (i32.ge_u (local.get $a) (local.get $A)))
        (local.set $g (i32.const 0))
        ;; four groups at a time
        (block $g4Done
          (loop $g4
            (br_if $g4Done (i32.gt_u (i32.add (local.get $g) (i32.const 4)) (local.get $G)))
            (local.set $s0 (f32.const 0))
            (local.set $s1 (f32.const 0))
            (local.set $s2 (f32.const 0))
            (local.set $s3 (f32.const 0))
            (local.set $p (i32.add (local.get $x) (i32.add (i32.mul (i32.mul (local.get $a) (local.get $N)) (local.get $rowB))
                                                          (i32.mul (local.get $g) (local.get $gB)))))
            (local.set $n (local.get $N))
            (block $nDone
              (loop $ns
                (br_if $nDone (i32.eqz (local.get $n)))
                (local.set $q (local.get $p))
                (local.set $j (local.get $c))
                (block $jDone
                  (loop $js
                    (br_if $jDone (i32.eqz (local.get $j)))
                    (local.set $s0 (f32.add (local.get $s0) (f32.load (local.get $q))))
                    (local.set $s1 (f32.add (local.get $s1) (f32.load (i32.add (local.get $q) (local.get $gB)))))
                    (local.set $s2 (f32.add (local.get $s2) (f32.load (i32.add (local.get $q) (i32.shl (local.get $gB) (i32.const 1))))))
                    (local.set $s3 (f32.add (local.get $s3) (f32.load (i32.add (local.get $q) (i32.mul (local.get $gB) (i32.const 3))))))
                    (local.set $q (i32.add (local.get $q) (i32.const 4)))
                    (local.set $j (i32.sub (local.get $j) (i32.const 1)))
                    (br $js)))
                (local.set $p (i32.add (local.get $p) (local.get $rowB)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $ns)))
            (if (local.get $mean)
              (then
                (local.set $s0 (f32.div (local.get $s0) (local.get $count)))
                (local.set $s1 (f32.div (local.get $s1) (local.get $count)))
                (local.set $s2 (f32.div (local.get $s2) (local.get $count)))
                (local.set $s3 (f32.div (local.get $s3) (local.get $count)))))
            (f32.store (local.get $o) (local.get $s0))
            (f32.store offset=4 (local.get $o) (local.get $s1))
            (f32.store offset=8 (local.get $o) (local.get $s2))
            (f32.store offset=12 (local.get $o) (local.get $s3))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $g (i32.add (local.get $g) (i32.const 4)))
            (br $g4)))
        ;; the last G mod 4 groups one at a time
        (block $g1Done
          (loop $g1
            (br_if $g1Done (i32.ge_u (local.get $g) (local.get $G)))
            (local.set $s0 (f32.const 0))
            (local.set $p (i32.add (local.get $x) (i32.add (i32.mul (i32.mul (local.get $a) (local.get $N)) (local.get $rowB))
                                                          (i32.mul (local.get $g) (local.get $gB)))))
            (local.set $n (local.get $N))
            (block $n1Done
              (loop $n1
                (br_if $n1Done (i32.eqz (local.get $n)))
                (local.set $q (local.get $p))
                (local.set $j (local.get $c))
                (block $j1Done
                  (loop $j1
                    (br_if $j1Done (i32.eqz (local.get $j)))
                    (local.set $s0 (f32.add (local.get $s0) (f32.load (local.get $q))))
                    (local.set $q (i32.add (local.get $q) (i32.const 4)))
                    (local.set $j (i32.sub (local.get $j) (i32.const 1)))
                    (br $j1)))
                (local.set $p (i32.add (local.get $p) (local.get $rowB)))
                (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                (br $n1)))
            (if (local.get $mean)
              (then (local.set $s0 (f32.div (local.get $s0) (local.get $count)))))
            (f32.store (local.get $o) (local.get $s0))
            (local.set $o (i32.add (local.get $o) (i32.const 4)))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (br $g1)))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (br $as)))))
