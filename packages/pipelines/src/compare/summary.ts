/**
 * The compare's statistics over runs: per variant and metric the mean and 95 % interval over seeds; per variant against
 * its baseline the paired difference, its interval and the verdict (paired t-test; see @factorgen/eval stats.ts for
 * why that test at 3-5 seeds). Pure.
 */
import { meanInterval, pairedComparison, type Interval, type PairedComparison } from '@factorgen/eval';
import type { CompareVariant } from './variants';
import type { RunResult } from './run';

export type CompareMetricKey = 'psnr' | 'ssim' | 'rfid' | 'fid' | 'classAccuracy' | 'precision' | 'recall';
export type CompareMetric = { key: CompareMetricKey; label: string; unit: string; half: 'tokenizer' | 'generation'; higherIsBetter: boolean; digits: number };

/** The metrics compared, in report order. */
export const compareMetrics: CompareMetric[] = [
  { key: 'psnr', label: 'PSNR (global MSE)', unit: 'dB', half: 'tokenizer', higherIsBetter: true, digits: 2 },
  { key: 'ssim', label: 'SSIM', unit: '', half: 'tokenizer', higherIsBetter: true, digits: 3 },
  { key: 'rfid', label: 'rFID', unit: '', half: 'tokenizer', higherIsBetter: false, digits: 2 },
  { key: 'fid', label: 'sample FID', unit: '', half: 'generation', higherIsBetter: false, digits: 2 },
  { key: 'classAccuracy', label: 'class accuracy', unit: '', half: 'generation', higherIsBetter: true, digits: 3 },
  { key: 'precision', label: 'precision', unit: '', half: 'generation', higherIsBetter: true, digits: 3 },
  { key: 'recall', label: 'recall', unit: '', half: 'generation', higherIsBetter: true, digits: 3 },
];

/** A run's value of a metric, or null when the run has not measured it (or it does not apply: SSIM under 11 px). */
export function metricValue(r: RunResult, key: CompareMetricKey): number | null {
  const v = key === 'psnr' || key === 'ssim' || key === 'rfid' ? r.tokenizer?.[key] : r.generation?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export type MetricSummary = Interval & { values: number[]; seeds: number[] };
export type VariantSummary = { variant: string; label: string; metrics: Partial<Record<CompareMetricKey, MetricSummary>> };
export type ComparisonRow = Omit<PairedComparison, 'diffs'> & { variant: string; baseline: string; metric: CompareMetricKey; seeds: number[]; diffs: number[] };
export type CompareSummary = { variants: VariantSummary[]; comparisons: ComparisonRow[] };

/**
 * Intervals per variant and metric, and paired comparisons of every variant with its baseline on every metric both
 * have at two or more common seeds (at one seed there is no interval; the row is left out). A generator variant
 * (tokens of another) is compared on the generation metrics only: its tokenizer is its baseline's.
 */
export function summarizeCompare(variants: CompareVariant[], runs: RunResult[], level = 0.95): CompareSummary {
  const bySeed = (variant: string, key: CompareMetricKey): Map<number, number> => {
    const m = new Map<number, number>();
    for (const r of runs) {
      if (r.variant !== variant) continue;
      const v = metricValue(r, key);
      if (v !== null) m.set(r.seed, v);
    }
    return m;
  };
  const summaries: VariantSummary[] = variants.map((v) => {
    const metrics: VariantSummary['metrics'] = {};
    for (const m of compareMetrics) {
      if (m.half === 'tokenizer' && !v.tokenizer) continue;
      const s = bySeed(v.id, m.key);
      const seeds = [...s.keys()].sort((a, b) => a - b);
      if (seeds.length === 0) continue;
      const values = seeds.map((k) => s.get(k)!);
      metrics[m.key] = { ...meanInterval(values, level), values, seeds };
    }
    return { variant: v.id, label: v.label, metrics };
  });
  const comparisons: ComparisonRow[] = [];
  for (const v of variants) {
    if (!v.baseline) continue;
    for (const m of compareMetrics) {
      if (m.half === 'tokenizer' && !v.tokenizer) continue;
      const a = bySeed(v.baseline, m.key);
      const b = bySeed(v.id, m.key);
      const seeds = [...b.keys()].filter((s) => a.has(s)).sort((x, y) => x - y);
      if (seeds.length < 2) continue;
      const c = pairedComparison(seeds.map((s) => a.get(s)!), seeds.map((s) => b.get(s)!), { higherIsBetter: m.higherIsBetter, level });
      comparisons.push({ ...c, variant: v.id, baseline: v.baseline, metric: m.key, seeds });
    }
  }
  return { variants: summaries, comparisons };
}

/** "17.62 [17.40, 17.84]" (or "17.62" for one seed), at the metric's digits. */
export function formatInterval(s: Interval, digits: number): string {
  const f = (x: number) => x.toFixed(digits);
  return s.low === null || s.high === null ? f(s.mean) : `${f(s.mean)} [${f(s.low)}, ${f(s.high)}]`;
}

/** One sentence for a comparison row, e.g. "fq2 vs vq on PSNR (global MSE): better, +0.61 dB [0.30, 0.92], p = 0.012". */
export function verdictText(c: ComparisonRow): string {
  const m = compareMetrics.find((x) => x.key === c.metric)!;
  const sign = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(m.digits);
  const interval = c.diff.low === null || c.diff.high === null ? '' : ` [${c.diff.low.toFixed(m.digits)}, ${c.diff.high.toFixed(m.digits)}]`;
  const p = c.p === null ? '' : `, p = ${c.p < 0.001 ? c.p.toExponential(1) : c.p.toFixed(3)}`;
  const more = c.verdict === 'not resolvable at this budget'
    ? c.seedsNeeded === null ? '; no number of seeds would resolve the observed difference (under 1000)' : `; needs about ${c.seedsNeeded} seeds at this spread`
    : '';
  return `${c.variant} vs ${c.baseline} on ${m.label}: ${c.verdict}, ${sign(c.diff.mean)}${m.unit ? ' ' + m.unit : ''}${interval}${p} (${c.seeds.length} paired seeds)${more}`;
}
