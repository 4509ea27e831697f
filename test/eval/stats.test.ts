import { describe, expect, it } from 'vitest';
import { tQuantile, meanInterval, pairedComparison, seedsNeeded } from '@factorgen/eval';

describe('compare statistics (paired t)', () => {
  it('t quantiles match the printed table (two-sided 95 %: 12.706, 4.303, 2.776, 2.093, 1.984 at 100 dof)', () => {
    expect(tQuantile(0.975, 1)).toBeCloseTo(12.706, 3);
    expect(tQuantile(0.975, 2)).toBeCloseTo(4.303, 3);
    expect(tQuantile(0.975, 4)).toBeCloseTo(2.776, 3);
    expect(tQuantile(0.975, 19)).toBeCloseTo(2.093, 3);
    expect(tQuantile(0.975, 100)).toBeCloseTo(1.984, 3);
    expect(() => tQuantile(1, 3)).toThrow('tQuantile: p must be in (0, 1) (got 1)');
  });

  it('mean interval of 1..5: 3 ± 2.776 · 1.5811/√5 = [1.0368, 4.9632]', () => {
    const r = meanInterval([1, 2, 3, 4, 5]);
    expect(r.mean).toBe(3);
    expect(r.sd).toBeCloseTo(Math.sqrt(2.5), 12);
    expect(r.low!).toBeCloseTo(1.0368, 4);
    expect(r.high!).toBeCloseTo(4.9632, 4);
  });

  it('one value has a mean and no interval; empty and non-finite lists are refused', () => {
    expect(meanInterval([7])).toMatchObject({ n: 1, mean: 7, low: null, high: null });
    expect(() => meanInterval([])).toThrow('meanInterval: no values');
    expect(() => meanInterval([1, Number.NaN])).toThrow('meanInterval: values must be finite (got 1, NaN)');
  });

  it('paired diffs 1,2,2: mean 5/3, t = 5, interval 5/3 ± 4.3027/3 = [0.23245, 3.10088] excludes 0, p = 1 - 5/√27 (t with 2 dof)', () => {
    const c = pairedComparison([10, 11, 12], [11, 13, 14], { higherIsBetter: true });
    expect(c.diffs).toEqual([1, 2, 2]);
    expect(c.diff.mean).toBeCloseTo(5 / 3, 12);
    expect(c.t).toBeCloseTo(5, 10);
    expect(c.diff.low!).toBeCloseTo(0.23245, 4);
    expect(c.diff.high!).toBeCloseTo(3.10088, 4);
    // The t(2) cdf has the closed form 1/2 + t / (2 sqrt(2 + t^2)): p = 2 F(-5) = 1 - 5/sqrt(27).
    expect(c.p!).toBeCloseTo(1 - 5 / Math.sqrt(27), 8);
    expect(c.verdict).toBe('better');
    expect(c.seedsNeeded).toBeNull();
  });

  it('direction: the same differences on a lower-is-better metric (rFID) are worse', () => {
    expect(pairedComparison([10, 11, 12], [11, 13, 14], { higherIsBetter: false }).verdict).toBe('worse');
    expect(pairedComparison([11, 13, 14], [10, 11, 12], { higherIsBetter: false }).verdict).toBe('better');
  });

  it('diffs 1,-1,2 are not resolvable; as observed they would need 23 seeds (t(22)·sd/√23 = 0.661 < 2/3 < t(21)·sd/√22 = 0.677)', () => {
    const c = pairedComparison([0, 0, 0], [1, -1, 2], { higherIsBetter: true });
    expect(c.verdict).toBe('not resolvable at this budget');
    expect(c.diff.low!).toBeLessThan(0);
    expect(c.seedsNeeded).toBe(23);
    expect(seedsNeeded(2 / 3, Math.sqrt(7 / 3))).toBe(23);
  });

  it('a zero mean difference never resolves; too many seeds are reported as null; equal non-zero diffs resolve at 2 seeds', () => {
    expect(pairedComparison([1, 2, 3], [2, 1, 3], { higherIsBetter: true }).seedsNeeded).toBeNull();
    expect(seedsNeeded(0.001, 1, 0.95, 1000)).toBeNull();
    const same = pairedComparison([1, 2], [2, 3], { higherIsBetter: true });
    expect(same.t).toBe(Infinity);
    expect(same.p).toBe(0);
    expect(same.verdict).toBe('better');
  });

  it('one seed: a difference but no interval and no verdict; unpaired lists are refused', () => {
    const c = pairedComparison([1], [2], { higherIsBetter: true });
    expect(c.p).toBeNull();
    expect(c.verdict).toBe('not resolvable at this budget');
    expect(() => pairedComparison([1, 2], [1], { higherIsBetter: true })).toThrow('pairedComparison: 2 baseline values but 1 variant values; seeds must pair');
  });
});
