/**
 * Small-sample statistics for comparing variants over paired seeds (factorgen compare).
 *
 * Why a paired t-test: each seed gives every variant the same data order and initialization stream, so the per-seed
 * difference (variant - baseline) removes what the seed does to both. With 3-5 pairs the only test that can decide at
 * all is a parametric one: the two-sided Wilcoxon signed-rank test's smallest p-value is 2/2^n (0.25 at n = 3, 0.0625 at
 * n = 5), so it can never reach 0.05 below n = 6, and a sign test likewise. The t-test's Student distribution carries
 * the uncertainty of a standard deviation estimated from so few pairs (t(0.975, 2) = 4.30, not 1.96), and its normality
 * assumption is mild here: each metric is itself a mean over hundreds or thousands of images.
 * Reference: Student (1908); any statistics text's "paired t-test" (e.g. NIST/SEMATECH e-Handbook, 7.3.1).
 */
import jStat from 'jstat';
import { UserError } from '@factorgen/tfjs-ext';

/** Student's t quantile: x with P(T <= x) = p, T ~ t(dof). dof >= 1, 0 < p < 1. */
export function tQuantile(p: number, dof: number): number {
  if (!(p > 0 && p < 1)) throw new UserError(`tQuantile: p must be in (0, 1) (got ${p})`);
  if (!(dof >= 1)) throw new UserError(`tQuantile: dof must be >= 1 (got ${dof})`);
  return jStat.studentt.inv(p, dof);
}

/** A mean with its two-sided confidence interval (low/high are null when n < 2: one value has no spread). */
export type Interval = { n: number; mean: number; sd: number; low: number | null; high: number | null; level: number };

function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const n = xs.length;
  const mean = xs.reduce((a, x) => a + x, 0) / n;
  const sd = n < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  return { mean, sd };
}

/**
 * Mean of `xs` and its `level` (default 0.95) t interval mean ± t(1 - (1-level)/2, n-1) · sd/√n, sd with n - 1.
 * Throws on an empty list or a non-finite value.
 */
export function meanInterval(xs: readonly number[], level = 0.95): Interval {
  if (xs.length === 0) throw new UserError('meanInterval: no values');
  if (xs.some((x) => !Number.isFinite(x))) throw new UserError(`meanInterval: values must be finite (got ${xs.join(', ')})`);
  const n = xs.length;
  const { mean, sd } = meanSd(xs);
  if (n < 2) return { n, mean, sd, low: null, high: null, level };
  const half = tQuantile(1 - (1 - level) / 2, n - 1) * sd / Math.sqrt(n);
  return { n, mean, sd, low: mean - half, high: mean + half, level };
}

export type Verdict = 'better' | 'worse' | 'not resolvable at this budget';

/** The paired comparison of a variant against the baseline on one metric; see pairedComparison. */
export type PairedComparison = {
  /** per-seed difference variant - baseline, in the metric's unit */
  diffs: number[];
  /** mean difference and its interval */
  diff: Interval;
  /** the paired t statistic mean / (sd/√n) (±Infinity when every difference is equal and non-zero; NaN when all 0) */
  t: number;
  /** two-sided p-value of the paired t-test (null when n < 2) */
  p: number | null;
  verdict: Verdict;
  /**
   * When not resolvable: how many paired seeds would make an interval of this level exclude 0 if the mean difference
   * and its spread stayed as observed (smallest n with t(n-1)·sd/√n < |mean|); null when the mean difference is 0 or
   * more than `maxSeeds` would be needed. When resolved: null.
   */
  seedsNeeded: number | null;
};

/**
 * Paired comparison of `variant` against `baseline` (value per seed, same seed order; seeds paired): the interval of
 * the mean difference and the verdict 'better' / 'worse' when that interval excludes 0 (direction by
 * `higherIsBetter`), else 'not resolvable at this budget', i.e. the two-sided paired t-test at 1 - level.
 * Throws on lists of different lengths or fewer than 1 value.
 */
export function pairedComparison(
  baseline: readonly number[],
  variant: readonly number[],
  opts: { higherIsBetter: boolean; level?: number; maxSeeds?: number },
): PairedComparison {
  if (baseline.length !== variant.length) throw new UserError(`pairedComparison: ${baseline.length} baseline values but ${variant.length} variant values; seeds must pair`);
  const level = opts.level ?? 0.95;
  const diffs = variant.map((v, i) => v - baseline[i]!);
  const diff = meanInterval(diffs, level);
  const n = diffs.length;
  const se = diff.sd / Math.sqrt(n);
  const t = se === 0 ? (diff.mean === 0 ? Number.NaN : Math.sign(diff.mean) * Infinity) : diff.mean / se;
  const p = n < 2 ? null : Number.isNaN(t) ? 1 : !Number.isFinite(t) ? 0 : 2 * jStat.studentt.cdf(-Math.abs(t), n - 1);
  const resolved = diff.low !== null && diff.high !== null && (diff.low > 0 || diff.high < 0);
  let verdict: Verdict = 'not resolvable at this budget';
  if (resolved) verdict = (diff.mean > 0) === opts.higherIsBetter ? 'better' : 'worse';
  return { diffs, diff, t, p, verdict, seedsNeeded: resolved ? null : seedsNeeded(diff.mean, diff.sd, level, opts.maxSeeds ?? 1000) };
}

/**
 * Smallest n >= 2 with t(1 - (1-level)/2, n-1) · sd/√n < |mean|: the paired seeds an interval needs to exclude 0 when
 * the mean difference and its standard deviation are as observed. null when mean is 0 or n would exceed maxSeeds.
 */
export function seedsNeeded(mean: number, sd: number, level = 0.95, maxSeeds = 1000): number | null {
  if (mean === 0 || !Number.isFinite(mean)) return null;
  if (sd === 0) return 2;
  const q = 1 - (1 - level) / 2;
  for (let n = 2; n <= maxSeeds; n++) if (tQuantile(q, n - 1) * sd / Math.sqrt(n) < Math.abs(mean)) return n;
  return null;
}
