import { describe, expect, it } from 'vitest';
import { Rng } from '@factorgen/nn';
import { cfgCombine, chooseToken, topKMask, topPMask } from '@factorgen/generator';

const NEG = -Infinity;
const f32 = (a: number[]) => Float32Array.from(a);

describe('topKMask', () => {
  it('keeps exactly the k largest when there are no ties', () => {
    expect(Array.from(topKMask(f32([0.5, 2, -1, 3, 1]), 2))).toEqual([NEG, 2, NEG, 3, NEG]);
    expect(Array.from(topKMask(f32([0.5, 2, -1, 3, 1]), 1))).toEqual([NEG, NEG, NEG, 3, NEG]);
  });
  it('keeps every value tied with the k-th largest', () => {
    expect(Array.from(topKMask(f32([1, 3, 3, 2]), 1))).toEqual([NEG, 3, 3, NEG]);
    expect(Array.from(topKMask(f32([1, 3, 2, 2, 0]), 2))).toEqual([NEG, 3, 2, 2, NEG]);
    expect(Array.from(topKMask(f32([1, 3, 2, 2, 0]), 3))).toEqual([NEG, 3, 2, 2, NEG]);
  });
  it('is off for k = 0 and k >= V, and does not modify its input', () => {
    const l = f32([1, -2, 4]);
    expect(Array.from(topKMask(l, 0))).toEqual([1, -2, 4]);
    expect(Array.from(topKMask(l, 3))).toEqual([1, -2, 4]);
    expect(Array.from(topKMask(l, 7))).toEqual([1, -2, 4]);
    topKMask(l, 1);
    expect(Array.from(l)).toEqual([1, -2, 4]);
  });
});

describe('topPMask', () => {
  // probabilities 0.5, 0.25, 0.125, 0.125 (tokens 2 and 3 tied), given in shuffled order
  const l = f32([Math.log(0.25), Math.log(0.125), Math.log(0.5), Math.log(0.125)]);
  it('keeps the smallest prefix whose mass reaches p, a mass equal to p counting as reached', () => {
    expect(Array.from(topPMask(l, 0.5))).toEqual([NEG, NEG, l[2], NEG]);
    expect(Array.from(topPMask(l, 0.4))).toEqual([NEG, NEG, l[2], NEG]);
    expect(Array.from(topPMask(l, 0.5001))).toEqual([l[0], NEG, l[2], NEG]);
    expect(Array.from(topPMask(l, 0.75))).toEqual([l[0], NEG, l[2], NEG]);
  });
  it('keeps both tokens of a tie at the boundary', () => {
    expect(Array.from(topPMask(l, 0.76))).toEqual(Array.from(l));
    expect(Array.from(topPMask(l, 0.875))).toEqual(Array.from(l));
  });
  it('always keeps the top token, is off for p >= 1, and ignores already masked entries', () => {
    expect(Array.from(topPMask(l, 1e-6))).toEqual([NEG, NEG, l[2], NEG]);
    expect(Array.from(topPMask(l, 1))).toEqual(Array.from(l));
    // after a top-2 mask the renormalized probabilities are 2/3, 1/3
    const masked = topKMask(l, 2);
    expect(Array.from(topPMask(masked, 0.6))).toEqual([NEG, NEG, l[2], NEG]);
    expect(Array.from(topPMask(masked, 0.7))).toEqual([l[0], NEG, l[2], NEG]);
  });
});

describe('cfgCombine', () => {
  it('is uncond + s * (cond - uncond), and exactly cond at s = 1', () => {
    const c = f32([0.1, 2, -3]);
    const u = f32([0.3, -1, 0.7]);
    const g = cfgCombine(c, u, 1.5);
    for (let i = 0; i < 3; i++) expect(g[i]).toBeCloseTo(u[i] + 1.5 * (c[i] - u[i]), 6);
    expect(Array.from(cfgCombine(c, u, 1))).toEqual(Array.from(c));
    expect(Array.from(cfgCombine(c, u, 0))).toEqual(Array.from(u));
    expect(() => cfgCombine(c, f32([1]), 2)).toThrow(/lengths/);
  });
});

describe('chooseToken', () => {
  it('is greedy (first argmax, no draw) at temperature 0', () => {
    const rng = new Rng('t');
    const before = JSON.stringify(rng.state());
    expect(chooseToken(f32([1, 5, 5, 2]), { temperature: 0, topK: 0, topP: 1 }, rng)).toBe(1);
    expect(JSON.stringify(rng.state())).toBe(before);
  });
  it('draws with the softmax frequencies and never outside the top-k / top-p set', () => {
    const l = f32([Math.log(0.1), Math.log(0.6), Math.log(0.3)]);
    const rng = new Rng('freq');
    const n = 20000;
    const counts = [0, 0, 0];
    for (let i = 0; i < n; i++) counts[chooseToken(l, { temperature: 1, topK: 0, topP: 1 }, rng)]++;
    expect(counts[0] / n).toBeCloseTo(0.1, 1);
    expect(counts[1] / n).toBeCloseTo(0.6, 1);
    expect(counts[2] / n).toBeCloseTo(0.3, 1);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(chooseToken(l, { temperature: 1, topK: 2, topP: 1 }, rng));
    expect([...seen].sort()).toEqual([1, 2]);
    seen.clear();
    for (let i = 0; i < 500; i++) seen.add(chooseToken(l, { temperature: 1, topK: 0, topP: 0.6 }, rng));
    expect([...seen]).toEqual([1]);
  });
  it('sharpens with low temperature', () => {
    const l = f32([0, 1]);
    const rng = new Rng('temp');
    let ones = 0;
    for (let i = 0; i < 2000; i++) ones += chooseToken(l, { temperature: 0.1, topK: 0, topP: 1 }, rng);
    // p(1) = 1 / (1 + e^-10) ~ 0.99995
    expect(ones).toBeGreaterThan(1990);
  });
});
