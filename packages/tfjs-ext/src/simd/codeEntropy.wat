;; The codebook-usage entropy loss of the tokenizer (codeEntropyLoss) in one pass per row with WebAssembly SIMD128:
;; the similarities z_n . c_j, their softmax and its sums are made in a row buffer of V floats and never leave the
;; cache, instead of some 15 elementwise passes of tfjs ops over [N, V] tensors. Compiled to codeEntropyWasm.ts by
;; `npx tsx tools/src/buildWasm.ts` (wabt); test/tokenizer/codeEntropy.test.ts checks it against the formula.
;;
;; Layout (byte offsets, all float32): z [N, d] row-major; cT [d, Vp] the codes transposed, Vp = V rounded up to a
;; multiple of 8 with zero columns; rows of Vp floats for the scratch buffers and per-code vectors. Lanes V..Vp-1
;; get the logit -1e30, so their probability is exactly 0 and they add nothing to any sum.
;;
;; forward: per row n, a_j = (z_n . c_j) * invT, m_n = max_j a_j, s_n = sum_j exp(a_j - m_n), lse_n = m_n + log s_n,
;;   p_j = exp(a_j - m_n) / s_n; writes rowMax[n] = m_n, rowLogSum[n] = log s_n, H[n] = -sum_j p_j log p_j and adds
;;   p_j to colSum[j] (rows in order).
;; backward: with g [Vp] (dH(avg)/d avg, 0 on padding lanes), H and the row statistics of the forward pass and
;;   scale = dL/dloss * (-1/N) / T: log p_j = (a_j - m_n) - log s_n, p_j = exp(log p_j), gp = sum_j g_j p_j,
;;   ds_j = (p_j * ((log p_j + H_n) + (g_j - gp))) * scale (dL/d similarity, the order of codeEntropyLoss's tf ops);
;;   dz[n, k] = sum_j ds_j cT[k, j]; dcT[k, j] += ds_j z[n, k] (rows in order; dcT must be zero beforehand).
;; exp is Cephes' expf (range reduction by ln 2 in two parts, degree-7 polynomial, ~1 ulp), 0 below -87.34 where
;; float32 exp leaves the normal range.
(module
  (import "math" "log" (func $log (param f64) (result f64)))
  (memory (export "memory") 1)

  (func $exp4 (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128) (local $under v128)
    (local.set $under (f32x4.lt (local.get $x) (v128.const f32x4 -87.33654 -87.33654 -87.33654 -87.33654)))
    (local.set $x (f32x4.min (f32x4.max (local.get $x) (v128.const f32x4 -87.33654 -87.33654 -87.33654 -87.33654))
                             (v128.const f32x4 88.0 88.0 88.0 88.0)))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))))
    (local.set $r (f32x4.sub (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
                             (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $p (f32x4.add (f32x4.add (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
                             (v128.const f32x4 1.0 1.0 1.0 1.0)))
    ;; times 2^n, built in the exponent bits (n is in [-126, 127] after the clamp)
    (v128.andnot
      (f32x4.mul (local.get $p)
                 (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (v128.const i32x4 127 127 127 127)) (i32.const 23)))
      (local.get $under)))

  (func $hsum (param $v v128) (result f32)
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
             (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; a[j] = (sum_k zrow[k] * cT[k, j]) * invT, k ascending, 8 lanes at a time; a[V..Vp) = -1e30.
  (func $logits (param $zrow i32) (param $cT i32) (param $d i32) (param $Vp i32) (param $V i32) (param $invT v128) (param $a i32)
    (local $j i32) (local $k i32) (local $zp i32) (local $cp i32) (local $rowB i32) (local $x v128) (local $acc0 v128) (local $acc1 v128)
    (local.set $rowB (i32.shl (local.get $Vp) (i32.const 2)))
    (local.set $j (i32.const 0))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $j) (local.get $rowB)))
        (local.set $acc0 (v128.const i32x4 0 0 0 0))
        (local.set $acc1 (v128.const i32x4 0 0 0 0))
        (local.set $zp (local.get $zrow))
        (local.set $cp (i32.add (local.get $cT) (local.get $j)))
        (local.set $k (local.get $d))
        (block $kDone
          (loop $ks
            (br_if $kDone (i32.eqz (local.get $k)))
            (local.set $x (v128.load32_splat (local.get $zp)))
            (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $x) (v128.load (local.get $cp)))))
            (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $x) (v128.load offset=16 (local.get $cp)))))
            (local.set $zp (i32.add (local.get $zp) (i32.const 4)))
            (local.set $cp (i32.add (local.get $cp) (local.get $rowB)))
            (local.set $k (i32.sub (local.get $k) (i32.const 1)))
            (br $ks)))
        (v128.store (i32.add (local.get $a) (local.get $j)) (f32x4.mul (local.get $acc0) (local.get $invT)))
        (v128.store offset=16 (i32.add (local.get $a) (local.get $j)) (f32x4.mul (local.get $acc1) (local.get $invT)))
        (local.set $j (i32.add (local.get $j) (i32.const 32)))
        (br $blocks)))
    (local.set $j (i32.shl (local.get $V) (i32.const 2)))
    (block $padDone
      (loop $pad
        (br_if $padDone (i32.ge_u (local.get $j) (local.get $rowB)))
        (f32.store (i32.add (local.get $a) (local.get $j)) (f32.const -1e30))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $pad))))

  (func (export "forward")
    (param $z i32) (param $cT i32) (param $N i32) (param $d i32) (param $Vp i32) (param $V i32) (param $invTs f32)
    (param $a i32) (param $e i32) (param $colSum i32) (param $rowMax i32) (param $rowLogSum i32) (param $H i32)
    (local $n i32) (local $j i32) (local $rowB i32) (local $invT v128) (local $v v128) (local $acc v128)
    (local $mv v128) (local $lv v128) (local $inv v128) (local $p v128) (local $m f32) (local $s f32) (local $ls f32)
    (local.set $rowB (i32.shl (local.get $Vp) (i32.const 2)))
    (local.set $invT (f32x4.splat (local.get $invTs)))
    (local.set $n (i32.const 0))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $n) (local.get $N)))
        (call $logits (i32.add (local.get $z) (i32.shl (i32.mul (local.get $n) (local.get $d)) (i32.const 2)))
                      (local.get $cT) (local.get $d) (local.get $Vp) (local.get $V) (local.get $invT) (local.get $a))
        ;; m = max_j a_j
        (local.set $mv (v128.load (local.get $a)))
        (local.set $j (i32.const 16))
        (block $maxDone
          (loop $max
            (br_if $maxDone (i32.ge_u (local.get $j) (local.get $rowB)))
            (local.set $mv (f32x4.max (local.get $mv) (v128.load (i32.add (local.get $a) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $max)))
        (local.set $m (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 1 (local.get $mv)))
                               (f32.max (f32x4.extract_lane 2 (local.get $mv)) (f32x4.extract_lane 3 (local.get $mv)))))
        (local.set $mv (f32x4.splat (local.get $m)))
        ;; e_j = exp(a_j - m), s = sum_j e_j
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $expDone
          (loop $exps
            (br_if $expDone (i32.ge_u (local.get $j) (local.get $rowB)))
            (local.set $v (call $exp4 (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $j))) (local.get $mv))))
            (v128.store (i32.add (local.get $e) (local.get $j)) (local.get $v))
            (local.set $acc (f32x4.add (local.get $acc) (local.get $v)))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $exps)))
        (local.set $s (call $hsum (local.get $acc)))
        (local.set $ls (f32.demote_f64 (call $log (f64.promote_f32 (local.get $s)))))
        (f32.store (i32.add (local.get $rowMax) (i32.shl (local.get $n) (i32.const 2))) (local.get $m))
        (f32.store (i32.add (local.get $rowLogSum) (i32.shl (local.get $n) (i32.const 2))) (local.get $ls))
        (local.set $lv (f32x4.splat (local.get $ls)))
        (local.set $inv (f32x4.splat (f32.div (f32.const 1) (local.get $s))))
        ;; p_j = e_j / s: column sums, and sum_j p_j log p_j with log p_j = (a_j - m) - log s
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $pDone
          (loop $ps
            (br_if $pDone (i32.ge_u (local.get $j) (local.get $rowB)))
            (local.set $p (f32x4.mul (v128.load (i32.add (local.get $e) (local.get $j))) (local.get $inv)))
            (v128.store (i32.add (local.get $colSum) (local.get $j))
                        (f32x4.add (v128.load (i32.add (local.get $colSum) (local.get $j))) (local.get $p)))
            (local.set $acc (f32x4.add (local.get $acc)
                                       (f32x4.mul (local.get $p)
                                                  (f32x4.sub (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $j))) (local.get $mv)) (local.get $lv)))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $ps)))
        (f32.store (i32.add (local.get $H) (i32.shl (local.get $n) (i32.const 2))) (f32.neg (call $hsum (local.get $acc))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $rows))))

  (func (export "backward")
    (param $z i32) (param $cT i32) (param $N i32) (param $d i32) (param $Vp i32) (param $V i32) (param $invTs f32)
    (param $rowMax i32) (param $rowLogSum i32) (param $H i32) (param $g i32) (param $scales f32)
    (param $p i32) (param $lp i32) (param $dz i32) (param $dcT i32)
    (local $n i32) (local $j i32) (local $k i32) (local $rowB i32) (local $zrow i32) (local $cp i32) (local $dp i32)
    (local $invT v128) (local $scale v128) (local $mv v128) (local $lv v128) (local $hv v128) (local $gpv v128)
    (local $t v128) (local $v v128) (local $acc v128) (local $zk v128)
    (local.set $rowB (i32.shl (local.get $Vp) (i32.const 2)))
    (local.set $invT (f32x4.splat (local.get $invTs)))
    (local.set $scale (f32x4.splat (local.get $scales)))
    (local.set $n (i32.const 0))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $n) (local.get $N)))
        (local.set $zrow (i32.add (local.get $z) (i32.shl (i32.mul (local.get $n) (local.get $d)) (i32.const 2))))
        (call $logits (local.get $zrow) (local.get $cT) (local.get $d) (local.get $Vp) (local.get $V) (local.get $invT) (local.get $lp))
        (local.set $mv (v128.load32_splat (i32.add (local.get $rowMax) (i32.shl (local.get $n) (i32.const 2)))))
        (local.set $lv (v128.load32_splat (i32.add (local.get $rowLogSum) (i32.shl (local.get $n) (i32.const 2)))))
        (local.set $hv (v128.load32_splat (i32.add (local.get $H) (i32.shl (local.get $n) (i32.const 2)))))
        ;; log p, p, and gp = sum_j p_j g_j
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $pDone
          (loop $ps
            (br_if $pDone (i32.ge_u (local.get $j) (local.get $rowB)))
            (local.set $t (f32x4.sub (f32x4.sub (v128.load (i32.add (local.get $lp) (local.get $j))) (local.get $mv)) (local.get $lv)))
            (v128.store (i32.add (local.get $lp) (local.get $j)) (local.get $t))
            (local.set $v (call $exp4 (local.get $t)))
            (v128.store (i32.add (local.get $p) (local.get $j)) (local.get $v))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (v128.load (i32.add (local.get $g) (local.get $j))))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $ps)))
        (local.set $gpv (f32x4.splat (call $hsum (local.get $acc))))
        ;; ds_j over p_j, in place
        (local.set $j (i32.const 0))
        (block $dsDone
          (loop $dss
            (br_if $dsDone (i32.ge_u (local.get $j) (local.get $rowB)))
            (v128.store (i32.add (local.get $p) (local.get $j))
              (f32x4.mul
                (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $j)))
                           (f32x4.add (f32x4.add (v128.load (i32.add (local.get $lp) (local.get $j))) (local.get $hv))
                                      (f32x4.sub (v128.load (i32.add (local.get $g) (local.get $j))) (local.get $gpv))))
                (local.get $scale)))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $dss)))
        ;; dz[n, k] = sum_j ds_j cT[k, j]; dcT[k, j] += ds_j z[n, k]
        (local.set $k (i32.const 0))
        (block $kDone
          (loop $ks
            (br_if $kDone (i32.ge_u (local.get $k) (local.get $d)))
            (local.set $zk (v128.load32_splat (i32.add (local.get $zrow) (i32.shl (local.get $k) (i32.const 2)))))
            (local.set $cp (i32.add (local.get $cT) (i32.mul (local.get $k) (local.get $rowB))))
            (local.set $dp (i32.add (local.get $dcT) (i32.mul (local.get $k) (local.get $rowB))))
            (local.set $acc (v128.const i32x4 0 0 0 0))
            (local.set $j (i32.const 0))
            (block $jDone
              (loop $js
                (br_if $jDone (i32.ge_u (local.get $j) (local.get $rowB)))
                (local.set $v (v128.load (i32.add (local.get $p) (local.get $j))))
                (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (v128.load (i32.add (local.get $cp) (local.get $j))))))
                (v128.store (i32.add (local.get $dp) (local.get $j))
                            (f32x4.add (v128.load (i32.add (local.get $dp) (local.get $j))) (f32x4.mul (local.get $v) (local.get $zk))))
                (local.set $j (i32.add (local.get $j) (i32.const 16)))
                (br $js)))
            (f32.store (i32.add (local.get $dz) (i32.shl (i32.add (i32.mul (local.get $n) (local.get $d)) (local.get $k)) (i32.const 2)))
                       (call $hsum (local.get $acc)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $ks)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $rows)))))
