import { describe, expect, it } from 'vitest';
import { hueDegrees, hueDistance, meanHueError } from '@factorgen/eval';

describe('mean hue error', () => {
  it('hue in degrees and circular distance (hand-computed)', () => {
    expect(hueDegrees(255, 0, 0)).toBe(0);
    expect(hueDegrees(255, 255, 0)).toBe(60);
    expect(hueDegrees(0, 255, 0)).toBe(120);
    expect(hueDegrees(0, 0, 255)).toBe(240);
    expect(hueDegrees(255, 0, 51)).toBeCloseTo(348, 10); // 360 - 60 * 51/255
    expect(hueDegrees(255, 51, 0)).toBeCloseTo(12, 10);
    expect(hueDegrees(100, 100, 100)).toBe(0); // achromatic: 0 by convention
    // the emoji yellow (247,200,41) and what came back (234,161,72): 46.3 and 33.0 degrees
    expect(hueDegrees(247, 200, 41)).toBeCloseTo(60 * (200 - 41) / (247 - 41), 10);
    expect(hueDegrees(234, 161, 72)).toBeCloseTo(60 * (161 - 72) / (234 - 72), 10);
    expect(hueDistance(348, 12)).toBeCloseTo(24, 10);
    expect(hueDistance(10, 350)).toBe(20);
    expect(hueDistance(0, 180)).toBe(180);
  });

  it('averages over coloured original pixels only and counts reconstructions turned grey', () => {
    const orig = [
      [255, 0, 0], // red -> yellow: 60
      [255, 0, 51], // hue 348 -> (255,51,0) hue 12: 24 across 0
      [0, 255, 0], // green -> grey (100,100,100), hue 0: 120, and turned grey
      [255, 255, 255], // white: not counted
      [40, 0, 0], // value 0.157 < 0.25: not counted
      [255, 230, 230], // saturation 0.098 < 0.25: not counted
    ];
    const recon = [[255, 255, 0], [255, 51, 0], [100, 100, 100], [0, 0, 255], [0, 255, 0], [0, 0, 255]];
    const m = meanHueError(Uint8Array.from(orig.flat()), Uint8Array.from(recon.flat()), 3);
    expect(m.pixels).toBe(3);
    expect(m.meanDeg).toBeCloseTo((60 + 24 + 120) / 3, 10);
    expect(m.desaturatedShare).toBeCloseTo(1 / 3, 10);
    expect(meanHueError(Uint8Array.from(orig.flat()), Uint8Array.from(orig.flat()), 3).meanDeg).toBe(0);
    // thresholds are options: with saturation >= 0.05 the pale pink (hue 0) counts too; recon blue (240) is 120 away
    expect(meanHueError(Uint8Array.from(orig.flat()), Uint8Array.from(recon.flat()), 3, { minSaturation: 0.05 }).meanDeg).toBeCloseTo((60 + 24 + 120 + 120) / 4, 10);
  });

  it('refuses grey images and mismatched lengths with one line', () => {
    expect(() => meanHueError(new Uint8Array(4), new Uint8Array(4), 1)).toThrow('hue error: needs RGB images (got 1 channel)');
    expect(() => meanHueError(new Uint8Array(6), new Uint8Array(3), 3)).toThrow('hue error: 1 reconstructed pixels for 2 original pixels');
  });
});
