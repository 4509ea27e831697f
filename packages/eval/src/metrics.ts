/**
 * Evaluation metrics on plain JS arrays (no tensors): feature statistics, Fréchet distance,
 * k-NN precision/recall, PSNR, SSIM, accuracy. Everything accumulates in Float64.
 */

/** N row vectors of dimension D, row-major: data[i * d + j]. */
export type FeatureMatrix = { n: number; d: number; data: Float32Array | Float64Array };

/** Mean vector and covariance matrix (row-major D×D) of a set of features. */
export type GaussianStats = { d: number; mean: Float64Array; cov: Float64Array };

function assertFeatures(x: FeatureMatrix, what: string): void {
  if (x.data.length !== x.n * x.d) throw new Error(`${what}: data length ${x.data.length} != n*d = ${x.n}*${x.d}`);
}

/** Mean [D] of N feature rows. */
export function featureMean(x: FeatureMatrix): Float64Array {
  assertFeatures(x, 'featureMean');
  const { n, d, data } = x;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  return mean;
}

/**
 * Mean [D] and unbiased covariance [D,D] (divides by N-1, like numpy.cov, which FID references use).
 * Two-pass (centre first) so large means do not cost precision. Needs N >= 2.
 */
export function featureStats(x: FeatureMatrix): GaussianStats {
  const { n, d, data } = x;
  if (n < 2) throw new Error(`featureStats: need at least 2 rows, got ${n}`);
  const mean = featureMean(x);
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = data[i * d + j] - mean[j];
    for (let a = 0; a < d; a++) {
      const ra = row[a];
      const base = a * d;
      for (let b = a; b < d; b++) cov[base + b] += ra * row[b];
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b] / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { d, mean, cov };
}

/** C = A @ B for row-major square matrices [D,D]. */
export function matMulSquare(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const c = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = a[i * d + k];
      if (aik === 0) continue;
      const bRow = k * d;
      const cRow = i * d;
      for (let j = 0; j < d; j++) c[cRow + j] += aik * b[bRow + j];
    }
  }
  return c;
}

/**
 * Eigen-decomposition of a symmetric matrix A [D,D] (row-major) by cyclic Jacobi rotations, in Float64.
 * Returns eigenvalues [D] (unsorted) and eigenvectors as the columns of `vectors` [D,D]:
 * A = V diag(values) V^T. Jacobi is slow (O(D^3) per sweep) but accurate, and D is ~128 here.
 */
export function symmetricEigen(matrix: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  if (matrix.length !== d * d) throw new Error(`symmetricEigen: matrix length ${matrix.length} != ${d}x${d}`);
  const a = Float64Array.from(matrix);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let total = 0;
  for (let i = 0; i < d * d; i++) total += a[i] * a[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q] * a[p * d + q];
    // Converged once the off-diagonal mass is at rounding level relative to the whole matrix.
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A <- A J (columns p, q), then A <- J^T A (rows p, q); V <- V J.
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p];
          const akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k];
          const aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        a[p * d + q] = 0;
        a[q * d + p] = 0;
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p];
          const vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = a[i * d + i];
  return { values, vectors: v };
}

/**
 * Principal square root of a symmetric positive semi-definite matrix [D,D]: V diag(sqrt(λ)) V^T.
 * Eigenvalues that rounding made slightly negative are clamped to 0.
 */
export function sqrtPsd(matrix: Float64Array, d: number): Float64Array {
  const { values, vectors } = symmetricEigen(matrix, d);
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const s = Math.sqrt(Math.max(0, values[k]));
    if (s === 0) continue;
    for (let i = 0; i < d; i++) {
      const vik = vectors[i * d + k] * s;
      if (vik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j] += vik * vectors[j * d + k];
    }
  }
  return out;
}

/**
 * Fréchet distance between N(mu1, S1) and N(mu2, S2):
 * |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrt(S1^{1/2} S2 S1^{1/2})).
 * The inner matrix is symmetric PSD, so its trace-sqrt is the sum of sqrt(eigenvalues) — no complex sqrtm needed.
 */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  if (a.d !== b.d) throw new Error(`frechetDistance: dimensions differ (${a.d} vs ${b.d})`);
  const d = a.d;
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (a.mean[j] - b.mean[j]) ** 2;
  let traceA = 0;
  let traceB = 0;
  for (let j = 0; j < d; j++) {
    traceA += a.cov[j * d + j];
    traceB += b.cov[j * d + j];
  }
  const rootA = sqrtPsd(a.cov, d);
  const inner = matMulSquare(matMulSquare(rootA, b.cov, d), rootA, d);
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const m = 0.5 * (inner[i * d + j] + inner[j * d + i]);
      inner[i * d + j] = m;
      inner[j * d + i] = m;
    }
  }
  const { values } = symmetricEigen(inner, d);
  let traceRoot = 0;
  for (const lambda of values) traceRoot += Math.sqrt(Math.max(0, lambda));
  // Rounding can push identical distributions a hair below zero.
  return Math.max(0, meanTerm + traceA + traceB - 2 * traceRoot);
}

/** FID-style Fréchet distance between two feature sets (each row one image's features). */
export function frechetDistanceFeatures(a: FeatureMatrix, b: FeatureMatrix): number {
  return frechetDistance(featureStats(a), featureStats(b));
}

/** Squared Euclidean distance between row i of x and row j of y (same D). Four accumulators let the JIT overlap work. */
function sqDist(x: Float64Array, i: number, y: Float64Array, j: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const xi = i * d;
  const yj = j * d;
  let k = 0;
  for (; k + 3 < d; k += 4) {
    const t0 = x[xi + k] - y[yj + k];
    const t1 = x[xi + k + 1] - y[yj + k + 1];
    const t2 = x[xi + k + 2] - y[yj + k + 2];
    const t3 = x[xi + k + 3] - y[yj + k + 3];
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; k < d; k++) {
    const t = x[xi + k] - y[yj + k];
    s0 += t * t;
  }
  return s0 + s1 + s2 + s3;
}

/** The rows as Float64 (one conversion up front instead of one per distance). */
const asFloat64 = (a: Float32Array | Float64Array): Float64Array => (a instanceof Float64Array ? a : Float64Array.from(a));

/**
 * Squared distance from each row to its k-th nearest neighbour in the same set, itself excluded
 * (duplicates count as neighbours at distance 0). x: [N,D] -> [N]. Needs N > k.
 */
export function kthNeighbourSqRadii(x: FeatureMatrix, k: number): Float64Array {
  assertFeatures(x, 'kthNeighbourSqRadii');
  const { n, d } = x;
  if (k < 1 || n <= k) throw new Error(`kthNeighbourSqRadii: need 1 <= k < N, got k=${k}, N=${n}`);
  const data = asFloat64(x.data);
  // best[i*k .. i*k+k): the k smallest distances seen for row i, sorted ascending.
  const best = new Float64Array(n * k).fill(Infinity);
  const insert = (i: number, v: number): void => {
    const base = i * k;
    if (v >= best[base + k - 1]) return;
    let p = base + k - 1;
    while (p > base && best[p - 1] > v) {
      best[p] = best[p - 1];
      p--;
    }
    best[p] = v;
  };
  // The distance matrix is symmetric: each pair is computed once and offered to both rows.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = sqDist(data, i, data, j, d);
      insert(i, v);
      insert(j, v);
    }
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = best[i * k + k - 1];
  return out;
}

/**
 * Improved precision and recall (Kynkäänniemi et al. 2019). Each set's manifold is the union of balls around
 * its points with radius = distance to the k-th nearest neighbour within the set.
 * precision = fraction of fake rows inside the real manifold; recall = fraction of real rows inside the fake manifold.
 * real: [Nr,D], fake: [Nf,D]; both need more than k rows. Cost O((Nr+Nf)^2 D) in plain JS.
 */
export function precisionRecall(real: FeatureMatrix, fake: FeatureMatrix, k = 3): { precision: number; recall: number } {
  if (real.d !== fake.d) throw new Error(`precisionRecall: dimensions differ (${real.d} vs ${fake.d})`);
  const d = real.d;
  const realRadii = kthNeighbourSqRadii(real, k);
  const fakeRadii = kthNeighbourSqRadii(fake, k);
  const fakeInReal = new Uint8Array(fake.n);
  const realInFake = new Uint8Array(real.n);
  const realData = asFloat64(real.data);
  const fakeData = asFloat64(fake.data);
  for (let i = 0; i < real.n; i++) {
    for (let j = 0; j < fake.n; j++) {
      // Both flags already set: this pair cannot change anything.
      if (realInFake[i] && fakeInReal[j]) continue;
      const v = sqDist(realData, i, fakeData, j, d);
      if (v <= realRadii[i]) fakeInReal[j] = 1;
      if (v <= fakeRadii[j]) realInFake[i] = 1;
    }
  }
  let p = 0;
  let r = 0;
  for (let j = 0; j < fake.n; j++) p += fakeInReal[j];
  for (let i = 0; i < real.n; i++) r += realInFake[i];
  return { precision: p / fake.n, recall: r / real.n };
}

/** Per-image PSNR is capped here so that one exact reconstruction does not make the mean infinite. */
export const PSNR_CAP_DB = 100;

/**
 * Mean over images of PSNR in dB, for uint8 images (peak 255). a, b: [N, ...] flattened, same length;
 * each image is length/N values. PSNR_i = 10 log10(255^2 / MSE_i), capped at PSNR_CAP_DB for MSE_i = 0.
 */
export function psnr(a: Uint8Array, b: Uint8Array, n: number): number {
  if (a.length !== b.length) throw new Error(`psnr: lengths differ (${a.length} vs ${b.length})`);
  if (n < 1 || a.length % n !== 0) throw new Error(`psnr: length ${a.length} is not a multiple of n=${n}`);
  const size = a.length / n;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let se = 0;
    for (let p = i * size; p < (i + 1) * size; p++) {
      const t = a[p] - b[p];
      se += t * t;
    }
    const mse = se / size;
    total += mse === 0 ? PSNR_CAP_DB : Math.min(PSNR_CAP_DB, 10 * Math.log10((255 * 255) / mse));
  }
  return total / n;
}

/**
 * PSNR of a whole set in dB, for uint8 images (peak 255): 10 log10(255^2 / MSE), MSE over every value of a and b
 * (the figure papers and torchmetrics report for a split). Infinity when a equals b.
 */
export function psnrGlobal(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`psnrGlobal: lengths differ (${a.length} vs ${b.length})`);
  if (a.length === 0) throw new Error('psnrGlobal: no pixels');
  let se = 0;
  for (let p = 0; p < a.length; p++) {
    const t = a[p] - b[p];
    se += t * t;
  }
  return 10 * Math.log10((255 * 255) / (se / a.length));
}

/** Normalized 1-D Gaussian window of odd `size`. */
export function gaussianWindow(size = 11, sigma = 1.5): Float64Array {
  const w = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) {
    w[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    s += w[i];
  }
  for (let i = 0; i < size; i++) w[i] /= s;
  return w;
}

/** Side of ssim's Gaussian window (Wang et al. 2004): images smaller than this have no SSIM. */
export const SSIM_WINDOW = 11;

/** ssim(a, b, shape), or null for images smaller than the SSIM_WINDOW x SSIM_WINDOW window, where SSIM is undefined. */
export function ssimWhereDefined(a: Uint8Array, b: Uint8Array, shape: ImageShape): number | null {
  return shape.height < SSIM_WINDOW || shape.width < SSIM_WINDOW ? null : ssim(a, b, shape);
}

/** Image geometry of a flattened uint8 batch [N,H,W,C]. */
export type ImageShape = { n: number; height: number; width: number; channels: number };

/**
 * Mean SSIM (Wang et al. 2004) of uint8 images [N,H,W,C]: Gaussian window 11, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255,
 * population (not sample) moments, 'valid' windows only (as Wang's reference and skimage after its border crop).
 * Averaged over window positions, then channels, then images. H and W must be at least 11.
 */
export function ssim(a: Uint8Array, b: Uint8Array, shape: ImageShape): number {
  const { n, height: h, width: w, channels: c } = shape;
  if (a.length !== b.length || a.length !== n * h * w * c) {
    throw new Error(`ssim: lengths ${a.length}, ${b.length} do not match [${n},${h},${w},${c}]`);
  }
  const win = gaussianWindow(SSIM_WINDOW, 1.5);
  const size = win.length;
  if (h < size || w < size) throw new Error(`ssim: images ${h}x${w} are smaller than the ${size}x${size} window`);
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  const oh = h - size + 1;
  const ow = w - size + 1;
  // Five planes: x, y, x^2, y^2, xy; filtered separably (rows, then columns).
  const planes = Array.from({ length: 5 }, () => new Float64Array(h * w));
  const rowPass = Array.from({ length: 5 }, () => new Float64Array(h * ow));
  const out = Array.from({ length: 5 }, () => new Float64Array(oh * ow));
  let total = 0;
  for (let img = 0; img < n; img++) {
    let imgTotal = 0;
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < h * w; p++) {
        const x = a[(img * h * w + p) * c + ch];
        const y = b[(img * h * w + p) * c + ch];
        planes[0][p] = x;
        planes[1][p] = y;
        planes[2][p] = x * x;
        planes[3][p] = y * y;
        planes[4][p] = x * y;
      }
      for (let q = 0; q < 5; q++) {
        const src = planes[q];
        const mid = rowPass[q];
        for (let r = 0; r < h; r++) {
          for (let col = 0; col < ow; col++) {
            let s = 0;
            for (let t = 0; t < size; t++) s += win[t] * src[r * w + col + t];
            mid[r * ow + col] = s;
          }
        }
        const dst = out[q];
        for (let r = 0; r < oh; r++) {
          for (let col = 0; col < ow; col++) {
            let s = 0;
            for (let t = 0; t < size; t++) s += win[t] * mid[(r + t) * ow + col];
            dst[r * ow + col] = s;
          }
        }
      }
      let chTotal = 0;
      for (let p = 0; p < oh * ow; p++) {
        const mx = out[0][p];
        const my = out[1][p];
        const vx = out[2][p] - mx * mx;
        const vy = out[3][p] - my * my;
        const cxy = out[4][p] - mx * my;
        chTotal += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      }
      imgTotal += chTotal / (oh * ow);
    }
    total += imgTotal / c;
  }
  return total / n;
}

/** Index of the largest value in each row of logits [N, classes] -> [N]. */
export function argmaxRows(logits: Float32Array | Float64Array, n: number, classes: number): Int32Array {
  if (logits.length !== n * classes) throw new Error(`argmaxRows: length ${logits.length} != ${n}*${classes}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j] > logits[i * classes + best]) best = j;
    out[i] = best;
  }
  return out;
}

/** Per class c in 0..classes-1: the fraction of items labelled c that were predicted as c (NaN for an absent class). */
export function perClassAccuracy(predicted: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number[] {
  if (predicted.length !== labels.length) throw new Error(`perClassAccuracy: lengths differ (${predicted.length} vs ${labels.length})`);
  const hits = new Array<number>(classes).fill(0);
  const totals = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) {
    totals[labels[i]]++;
    if (predicted[i] === labels[i]) hits[labels[i]]++;
  }
  return hits.map((h, c) => (totals[c] === 0 ? NaN : h / totals[c]));
}

/** Fraction of positions where predicted[i] === labels[i]. */
export function accuracy(predicted: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (predicted.length !== labels.length) throw new Error(`accuracy: lengths differ (${predicted.length} vs ${labels.length})`);
  if (predicted.length === 0) throw new Error('accuracy: no predictions');
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}
