import { describe, expect, it } from 'vitest';
import { Rng } from '@factorgen/nn';
import {
  PSNR_CAP_DB,
  accuracy,
  argmaxRows,
  featureStats,
  frechetDistance,
  frechetDistanceFeatures,
  gaussianWindow,
  kthNeighbourSqRadii,
  matMulSquare,
  precisionRecall,
  psnr,
  psnrGlobal,
  perClassAccuracy,
  sqrtPsd,
  ssim,
  ssimWhereDefined,
  symmetricEigen,
} from '@factorgen/eval';
import type { FeatureMatrix, GaussianStats } from '@factorgen/eval';

const stats = (mean: number[], cov: number[]): GaussianStats => ({
  d: mean.length,
  mean: Float64Array.from(mean),
  cov: Float64Array.from(cov),
});

/** A random symmetric positive definite [d,d] matrix: B B^T + 0.1 I. */
function randomSpd(d: number, rng: Rng): Float64Array {
  const b = Float64Array.from({ length: d * d }, () => rng.normal());
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += b[i * d + k] * b[j * d + k];
      out[i * d + j] = s + (i === j ? 0.1 : 0);
    }
  return out;
}

/** Gauss-Jordan inverse, for the independent matrix-sqrt reference below. */
function inverse(a: Float64Array, d: number): Float64Array {
  const m = Float64Array.from(a);
  const inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) inv[i * d + i] = 1;
  for (let c = 0; c < d; c++) {
    let piv = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(m[r * d + c]) > Math.abs(m[piv * d + c])) piv = r;
    for (let k = 0; k < d; k++) {
      [m[c * d + k], m[piv * d + k]] = [m[piv * d + k], m[c * d + k]];
      [inv[c * d + k], inv[piv * d + k]] = [inv[piv * d + k], inv[c * d + k]];
    }
    const p = m[c * d + c];
    for (let k = 0; k < d; k++) {
      m[c * d + k] /= p;
      inv[c * d + k] /= p;
    }
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = m[r * d + c];
      for (let k = 0; k < d; k++) {
        m[r * d + k] -= f * m[c * d + k];
        inv[r * d + k] -= f * inv[c * d + k];
      }
    }
  }
  return inv;
}

/** Denman-Beavers iteration: Y -> sqrt(A), an eigen-free reference for sqrtPsd. */
function sqrtDenmanBeavers(a: Float64Array, d: number): Float64Array {
  let y = Float64Array.from(a);
  let z = new Float64Array(d * d);
  for (let i = 0; i < d; i++) z[i * d + i] = 1;
  for (let it = 0; it < 60; it++) {
    const yi = inverse(y, d);
    const zi = inverse(z, d);
    y = y.map((v, i) => 0.5 * (v + zi[i]));
    z = z.map((v, i) => 0.5 * (v + yi[i]));
  }
  return y;
}

describe('featureStats', () => {
  it('gives the mean and the unbiased (N-1) covariance', () => {
    const s = featureStats({ n: 3, d: 2, data: Float64Array.from([1, 2, 3, 6, 5, 4]) });
    expect([...s.mean]).toEqual([3, 4]);
    // dx = (-2, 0, 2), dy = (-2, 2, 0): var = 8/2, cov = 4/2.
    expect([...s.cov]).toEqual([4, 2, 2, 4]);
  });
});

describe('symmetricEigen / sqrtPsd', () => {
  it('decomposes a random symmetric matrix: A V = V diag(l), V orthonormal', () => {
    const d = 10;
    const a = randomSpd(d, new Rng('eig'));
    for (let i = 0; i < d * d; i++) a[i] -= i % (d + 1) === 0 ? 3 : 0; // make it indefinite too
    const { values, vectors } = symmetricEigen(a, d);
    const av = matMulSquare(a, vectors, d);
    for (let i = 0; i < d; i++)
      for (let k = 0; k < d; k++) {
        expect(av[i * d + k]).toBeCloseTo(vectors[i * d + k] * values[k], 9);
        let dot = 0;
        for (let j = 0; j < d; j++) dot += vectors[j * d + i] * vectors[j * d + k];
        expect(dot).toBeCloseTo(i === k ? 1 : 0, 12);
      }
    expect(values.some((v) => v < 0)).toBe(true);
  });

  it('square root of [[2,1],[1,2]] is the closed form 1/2 [[s+1, s-1],[s-1, s+1]], s = sqrt 3', () => {
    const r = sqrtPsd(Float64Array.from([2, 1, 1, 2]), 2);
    const s = Math.sqrt(3);
    const want = [(s + 1) / 2, (s - 1) / 2, (s - 1) / 2, (s + 1) / 2];
    for (let i = 0; i < 4; i++) expect(r[i]).toBeCloseTo(want[i], 13);
  });

  it('matches the Denman-Beavers matrix square root on a random 8x8 SPD matrix', () => {
    const d = 8;
    const a = randomSpd(d, new Rng('sqrt'));
    const mine = sqrtPsd(a, d);
    const ref = sqrtDenmanBeavers(a, d);
    for (let i = 0; i < d * d; i++) expect(mine[i]).toBeCloseTo(ref[i], 9);
    const back = matMulSquare(mine, mine, d);
    for (let i = 0; i < d * d; i++) expect(back[i]).toBeCloseTo(a[i], 9);
  });

  it('clamps the tiny negative eigenvalues of a singular PSD matrix to 0', () => {
    // rank 1: v v^T with v = (1, 2); sqrt = v v^T / |v|.
    const r = sqrtPsd(Float64Array.from([1, 2, 2, 4]), 2);
    const want = [1, 2, 2, 4].map((x) => x / Math.sqrt(5));
    for (let i = 0; i < 4; i++) expect(r[i]).toBeCloseTo(want[i], 12);
  });
});

describe('frechetDistance', () => {
  it('is 0 for identical Gaussians', () => {
    const d = 6;
    const cov = randomSpd(d, new Rng('same'));
    const g = { d, mean: Float64Array.from({ length: d }, (_, i) => i - 2), cov };
    expect(frechetDistance(g, g)).toBeLessThan(1e-9);
  });

  it('1-D: (mu1 - mu2)^2 + (s1 - s2)^2', () => {
    const fd = frechetDistance(stats([1], [4]), stats([-0.5], [0.25]));
    expect(fd).toBeCloseTo(1.5 ** 2 + (2 - 0.5) ** 2, 12);
  });

  it('diagonal 2x2: |dmu|^2 + sum (sqrt a_i - sqrt b_i)^2 = 5 + 1 + 1', () => {
    expect(frechetDistance(stats([0, 0], [4, 0, 0, 9]), stats([1, 2], [1, 0, 0, 16]))).toBeCloseTo(7, 12);
  });

  it('identity vs [[2,1],[1,2]]: 2 + 4 - 2 (1 + sqrt 3)', () => {
    expect(frechetDistance(stats([0, 0], [1, 0, 0, 1]), stats([0, 0], [2, 1, 1, 2]))).toBeCloseTo(4 - 2 * Math.sqrt(3), 12);
  });

  it('non-commuting 2x2: Tr sqrt(S1^1/2 S2 S1^1/2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2))', () => {
    // S1 = [[2,1],[1,3]], S2 = [[1,-0.5],[-0.5,2]]: tr(S1 S2) = 7, det S1 = 5, det S2 = 1.75.
    const want = 5 + 5 + 3 - 2 * Math.sqrt(7 + 2 * Math.sqrt(5 * 1.75));
    const fd = frechetDistance(stats([1, 0], [2, 1, 1, 3]), stats([0, 2], [1, -0.5, -0.5, 2]));
    expect(fd).toBeCloseTo(want, 12);
    // symmetric in its arguments
    expect(frechetDistance(stats([0, 2], [1, -0.5, -0.5, 2]), stats([1, 0], [2, 1, 1, 3]))).toBeCloseTo(want, 12);
  });

  it('from features: large samples of N(0, I) and N(1, 4I) in 3-D approach 3*1 + 3*(2-1)^2 = 6', () => {
    const rng = new Rng('fdsample');
    const n = 20000;
    const a = Float64Array.from({ length: n * 3 }, () => rng.normal());
    const b = Float64Array.from({ length: n * 3 }, () => 1 + 2 * rng.normal());
    expect(frechetDistanceFeatures({ n, d: 3, data: a }, { n, d: 3, data: b })).toBeCloseTo(6, 0);
  });
});

const points1d = (xs: number[]): FeatureMatrix => ({ n: xs.length, d: 1, data: Float64Array.from(xs) });

describe('precisionRecall', () => {
  it('k-th neighbour radii exclude the point itself but count duplicates', () => {
    expect([...kthNeighbourSqRadii(points1d([0, 1, 2, 10]), 1)]).toEqual([1, 1, 1, 64]);
    expect([...kthNeighbourSqRadii(points1d([0, 1, 2, 10]), 2)]).toEqual([4, 1, 4, 81]);
    expect([...kthNeighbourSqRadii(points1d([5, 5, 7]), 1)]).toEqual([0, 0, 4]);
  });

  it('identical sets give precision = recall = 1', () => {
    const rng = new Rng('pr-same');
    const x: FeatureMatrix = { n: 60, d: 8, data: Float32Array.from({ length: 480 }, () => rng.normal()) };
    expect(precisionRecall(x, x, 3)).toEqual({ precision: 1, recall: 1 });
  });

  it('far-apart sets give 0, 0', () => {
    const rng = new Rng('pr-far');
    const a: FeatureMatrix = { n: 40, d: 4, data: Float32Array.from({ length: 160 }, () => rng.normal()) };
    const b: FeatureMatrix = { n: 30, d: 4, data: Float32Array.from({ length: 120 }, () => 100 + rng.normal()) };
    expect(precisionRecall(a, b, 3)).toEqual({ precision: 0, recall: 0 });
  });

  it('hand-computed 1-D cases (k = 1)', () => {
    // real radii: 0->1, 1->1, 2->1, 10->8. fake {.5,1.5,2.5,4} radii 1,1,1,1.5: every fake lies in a real ball
    // (4 is within 8 of 10); real 10 is 6 from 4 > 1.5, so recall 3/4.
    const real = points1d([0, 1, 2, 10]);
    expect(precisionRecall(real, points1d([0.5, 1.5, 2.5, 4]), 1)).toEqual({ precision: 1, recall: 0.75 });
    // fake 20 (radius 17.5) is 10 from 10 > 8: precision 3/4; its large ball covers real 10: recall 1.
    expect(precisionRecall(real, points1d([0.5, 1.5, 2.5, 20]), 1)).toEqual({ precision: 0.75, recall: 1 });
  });
});

describe('psnr', () => {
  it('a constant offset of 1 gives 20 log10(255) exactly', () => {
    const rng = new Rng('psnr');
    const a = Uint8Array.from({ length: 3 * 64 }, () => rng.int(255));
    const b = a.map((v) => v + 1);
    expect(psnr(a, b, 3)).toBeCloseTo(20 * Math.log10(255), 12);
  });

  it('averages per image: offsets 1 and 255 -> mean of 48.13 dB and 0 dB; identical -> the cap', () => {
    const a = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0]);
    const b = new Uint8Array([1, 1, 1, 1, 255, 255, 255, 255]);
    expect(psnr(a, b, 2)).toBeCloseTo((20 * Math.log10(255) + 0) / 2, 12);
    expect(psnr(a, a, 2)).toBe(PSNR_CAP_DB);
  });

  it('psnrGlobal uses the MSE over the whole set: offsets 1 and 255 -> 10 log10(255^2 / ((1 + 255^2) / 2))', () => {
    const a = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0]);
    const b = new Uint8Array([1, 1, 1, 1, 255, 255, 255, 255]);
    expect(psnrGlobal(a, b)).toBeCloseTo(10 * Math.log10((255 * 255) / ((1 + 255 * 255) / 2)), 12);
    // below the per-image mean of the same pair (24.07 dB vs 3.01 dB here)
    expect(psnrGlobal(a, b)).toBeLessThan(psnr(a, b, 2));
    expect(psnrGlobal(a, a)).toBe(Infinity);
  });
});

describe('perClassAccuracy', () => {
  it('is hits / count per label, NaN for a class with no items', () => {
    expect(perClassAccuracy([0, 1, 1, 0, 2], [0, 1, 0, 0, 1], 4)).toEqual([2 / 3, 1 / 2, NaN, NaN]);
  });
});

/** SSIM by direct 11x11 window sums (no separable filtering), the textbook formula, for comparison. */
function ssimNaive(a: Uint8Array, b: Uint8Array, n: number, h: number, w: number, c: number): number {
  const g = gaussianWindow(11, 1.5);
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  let total = 0;
  for (let img = 0; img < n; img++)
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      let count = 0;
      for (let y0 = 0; y0 + 11 <= h; y0++)
        for (let x0 = 0; x0 + 11 <= w; x0++) {
          let mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
          for (let dy = 0; dy < 11; dy++)
            for (let dx = 0; dx < 11; dx++) {
              const wt = g[dy] * g[dx];
              const idx = ((img * h + y0 + dy) * w + x0 + dx) * c + ch;
              mx += wt * a[idx];
              my += wt * b[idx];
              sxx += wt * a[idx] * a[idx];
              syy += wt * b[idx] * b[idx];
              sxy += wt * a[idx] * b[idx];
            }
          const vx = sxx - mx * mx, vy = syy - my * my, cxy = sxy - mx * my;
          sum += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
          count++;
        }
      total += sum / count / c;
    }
  return total / n;
}

describe('ssim', () => {
  const shape = { n: 2, height: 16, width: 14, channels: 3 };
  const size = 2 * 16 * 14 * 3;

  it('SSIM(x, x) = 1', () => {
    const rng = new Rng('ssim-same');
    const x = Uint8Array.from({ length: size }, () => rng.int(256));
    expect(ssim(x, x, shape)).toBeCloseTo(1, 12);
  });

  it('constant images a, b: (2ab + C1) / (a^2 + b^2 + C1)', () => {
    const c1 = (0.01 * 255) ** 2;
    const x = new Uint8Array(size).fill(100);
    const y = new Uint8Array(size).fill(150);
    expect(ssim(x, y, shape)).toBeCloseTo((2 * 100 * 150 + c1) / (100 ** 2 + 150 ** 2 + c1), 12);
  });

  it('matches a direct windowed computation on noisy images, and drops with more noise', () => {
    const rng = new Rng('ssim-noise');
    const x = Uint8Array.from({ length: size }, (_, i) => 128 + Math.round(60 * Math.sin(i / 7)));
    const noisy = (s: number) => x.map((v) => Math.max(0, Math.min(255, Math.round(v + s * rng.normal()))));
    const y1 = noisy(10);
    const y2 = noisy(40);
    const s1 = ssim(x, y1, shape);
    expect(s1).toBeCloseTo(ssimNaive(x, y1, 2, 16, 14, 3), 10);
    expect(ssim(x, y2, shape)).toBeLessThan(s1);
    expect(s1).toBeLessThan(1);
  });

  it('rejects images smaller than the window', () => {
    const x = new Uint8Array(10 * 10);
    expect(() => ssim(x, x, { n: 1, height: 10, width: 10, channels: 1 })).toThrow(/smaller than the 11x11 window/);
  });

  it('ssimWhereDefined: null below the window (what reconstruct and eval recon report there), ssim from 11x11 up', () => {
    const small = new Uint8Array(8 * 8);
    expect(ssimWhereDefined(small, small, { n: 1, height: 8, width: 8, channels: 1 })).toBeNull();
    expect(ssimWhereDefined(new Uint8Array(11 * 10), new Uint8Array(11 * 10), { n: 1, height: 11, width: 10, channels: 1 })).toBeNull();
    const rng = new Rng('ssim-defined');
    const x = Uint8Array.from({ length: 11 * 11 }, () => rng.int(256));
    const y = Uint8Array.from(x, (v) => 255 - v);
    const shape = { n: 1, height: 11, width: 11, channels: 1 };
    expect(ssimWhereDefined(x, y, shape)).toBe(ssim(x, y, shape));
  });
});

describe('accuracy', () => {
  it('argmax per row, then the fraction equal to the labels', () => {
    const pred = argmaxRows(Float32Array.from([0.1, 0.9, 0.0, 2, -1, 1, 0, 0, 5]), 3, 3);
    expect([...pred]).toEqual([1, 0, 2]);
    expect(accuracy(pred, Int32Array.from([1, 2, 2]))).toBeCloseTo(2 / 3, 12);
  });
});
