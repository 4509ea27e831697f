/** grid.png's readable defaults (issue 25): cells drawn at least 84 px, and a label font whose g, j, p, q, y descend. */
import { describe, expect, it } from 'vitest';
import { defaultGridScale, gridLayout, renderGrid, fontGlyphHeight, glyphRows, textWidth } from '@factorgen/formats';

const inkBelowBaseline = (ch: string) => glyphRows(ch)[7]! | glyphRows(ch)[8]!;

describe('the label font', () => {
  it('g, j, p, q, y, comma and semicolon ink the two rows below the baseline; no other character does', () => {
    expect(fontGlyphHeight).toBe(9);
    for (let code = 0x20; code <= 0x7e; code++) {
      const ch = String.fromCharCode(code);
      expect(inkBelowBaseline(ch) !== 0, ch).toBe('gjpqy,;'.includes(ch));
    }
    // g is not 9: 9 has no descender and a closed top; g's bowl starts at the x-height (row 2).
    expect(glyphRows('g')).not.toEqual(glyphRows('9'));
    expect(glyphRows('g').slice(0, 2)).toEqual([0, 0]);
    expect(glyphRows('9')[0]).not.toBe(0);
  });

  it('"bag" drawn at font scale 2: only the g has ink below the baseline, 2 rows of 2 px', () => {
    const img = new Uint8Array(28 * 28).fill(128);
    const { pixels, layout } = renderGrid([{ label: 'bag', images: [img] }], 28, 28, 1);
    expect(layout.fontScale).toBe(2);
    const top = layout.pad + Math.floor((layout.rowHeight - fontGlyphHeight * 2) / 2);
    const dark = (x0: number, x1: number, y0: number, y1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (pixels[y * layout.width + x] === 0) n++;
      return n;
    };
    const below = [top + 7 * 2, top + 9 * 2] as const; // rows 7-8 of the glyph cell
    const glyph = (i: number) => [layout.pad + i * 12, layout.pad + i * 12 + 10] as const; // advance 6 px x 2
    expect(dark(...glyph(0), ...below)).toBe(0); // b
    expect(dark(...glyph(1), ...below)).toBe(0); // a
    // g's tail: row 7 '....#' (1 font pixel) and row 8 '.###.' (3): 4 font pixels of 2x2
    expect(dark(...glyph(2), ...below)).toBe(4 * 4);
  });
});

describe('grid.png size', () => {
  const rows = (n: number) => [
    { label: '0 t-shirt', images: Array.from({ length: n }, () => new Uint8Array(28 * 28)) },
    { label: '8 bag', images: Array.from({ length: n }, () => new Uint8Array(28 * 28)) },
  ];

  it('28-px images are drawn 3x by default, with 2x labels and 4-px gaps', () => {
    expect(defaultGridScale(28, 28)).toBe(3);
    expect(defaultGridScale(32, 32)).toBe(3);
    expect(defaultGridScale(64, 64)).toBe(2);
    expect(defaultGridScale(128, 128)).toBe(1);
    const l = gridLayout(rows(4), 28, 28);
    expect(textWidth('0 t-shirt', 2)).toBe((9 * 6 - 1) * 2);
    // border 4 + label 106 + gap 4 + 4 cells of 84 + 4; height: border 4 + 2 rows of 84 + 4
    expect([l.cellWidth, l.fontScale, l.pad, l.width, l.height]).toEqual([84, 2, 4, 4 + 110 + 4 * 88, 4 + 2 * 88]);
    const { pixels } = renderGrid(rows(4), 28, 28, 1);
    expect(pixels.length).toBe(466 * 180);
  });

  it('--scale 4 gives 112-px cells; --scale 1 the old 28-px ones with 1x labels', () => {
    const l4 = gridLayout(rows(4), 28, 28, { scale: 4 });
    expect([l4.cellWidth, l4.width, l4.height]).toEqual([112, 4 + 110 + 4 * 116, 4 + 2 * 116]);
    const l1 = gridLayout(rows(4), 28, 28, { scale: 1 });
    expect([l1.cellWidth, l1.fontScale, l1.pad, l1.width, l1.height]).toEqual([28, 1, 2, 2 + 55 + 4 * 30, 2 + 2 * 30]);
  });
});
