import { UserError } from '@factorgen/tfjs-ext';

/** Which original pixels count for the hue error: HSV saturation and value both at least these (in [0,1]). */
export const HUE_MIN_SATURATION = 0.25;
export const HUE_MIN_VALUE = 0.25;

/** HSV hue in degrees [0,360) of an RGB pixel (0..255 each); achromatic pixels (r = g = b) get 0, as colorsys and OpenCV. */
export function hueDegrees(r: number, g: number, b: number): number {
  const max = Math.max(r, g, b);
  const d = max - Math.min(r, g, b);
  if (d === 0) return 0;
  let h: number;
  if (max === r) h = ((g - b) / d) % 6;
  else if (max === g) h = (b - r) / d + 2;
  else h = (r - g) / d + 4;
  h *= 60;
  return h < 0 ? h + 360 : h;
}

/** Circular distance of two hues in degrees: in [0,180]. */
export function hueDistance(a: number, b: number): number {
  const d = Math.abs(a - b) % 360;
  return d > 180 ? 360 - d : d;
}

/** What meanHueError measures; see there. */
export type HueError = {
  /** mean circular hue difference, degrees, over the counted pixels (NaN when none is counted) */
  meanDeg: number;
  /** share of the counted pixels whose reconstruction has HSV saturation below the threshold (colour turned grey) */
  desaturatedShare: number;
  /** pixels counted: originals with saturation >= minSaturation and value >= minValue */
  pixels: number;
  minSaturation: number;
  minValue: number;
};

/**
 * Colour fidelity of RGB reconstructions: over the pixels of `orig` that are coloured (HSV saturation
 * (max - min) / max >= minSaturation and value max / 255 >= minValue; white, grey and near-black pixels have no
 * reliable hue), the mean circular difference hueDistance(hue(orig), hue(recon)) in degrees, and the share of them that
 * the reconstruction turned grey (its saturation below minSaturation; such a pixel's hue is that of its small
 * remaining tint, 0 when exactly grey). orig, recon: uint8 [N,H,W,3]. Throws UserError when the lengths differ or the
 * images are not RGB.
 */
export function meanHueError(
  orig: Uint8Array, recon: Uint8Array, channels: number,
  opts: { minSaturation?: number; minValue?: number } = {},
): HueError {
  if (channels !== 3) throw new UserError(`hue error: needs RGB images (got ${channels} channel${channels === 1 ? '' : 's'})`);
  if (orig.length !== recon.length) throw new UserError(`hue error: ${recon.length / 3} reconstructed pixels for ${orig.length / 3} original pixels`);
  const minSaturation = opts.minSaturation ?? HUE_MIN_SATURATION;
  const minValue = opts.minValue ?? HUE_MIN_VALUE;
  const coloured = (r: number, g: number, b: number, checkValue: boolean) => {
    const max = Math.max(r, g, b);
    return max > 0 && (max - Math.min(r, g, b)) / max >= minSaturation && (!checkValue || max / 255 >= minValue);
  };
  let sum = 0;
  let count = 0;
  let grey = 0;
  for (let i = 0; i < orig.length; i += 3) {
    const [r, g, b] = [orig[i], orig[i + 1], orig[i + 2]];
    if (!coloured(r, g, b, true)) continue;
    const [r2, g2, b2] = [recon[i], recon[i + 1], recon[i + 2]];
    sum += hueDistance(hueDegrees(r, g, b), hueDegrees(r2, g2, b2));
    if (!coloured(r2, g2, b2, false)) grey++;
    count++;
  }
  return { meanDeg: count ? sum / count : NaN, desaturatedShare: count ? grey / count : NaN, pixels: count, minSaturation, minValue };
}
