import { drawText, fontGlyphHeight, textWidth } from './font5x7';

export type GridOptions = {
  /** Nearest-neighbour upscaling of each image (default: defaultGridScale, e.g. 3 for 28-px images). */
  scale?: number;
  /** Gap between cells and around the border, in output pixels (default 2 x the font scale). */
  pad?: number;
  /** Size of a font pixel (default 2 when a cell is >= 48 px tall, else 1). */
  fontScale?: number;
};

/** Cells at least this many pixels on their longer side by default: a 28-px Fashion-MNIST image is drawn 3x (84 px). */
export const READABLE_CELL_PX = 84;

/** The default upscaling for [h,w] images: the smallest integer that makes a cell READABLE_CELL_PX or more, at least 1. */
export function defaultGridScale(h: number, w: number): number {
  return Math.max(1, Math.ceil(READABLE_CELL_PX / Math.max(h, w, 1)));
}

/** Pixel layout of a grid, exposed so tests and callers can locate cells and labels. */
export type GridLayout = { width: number; height: number; labelWidth: number; cellWidth: number; cellHeight: number; rowHeight: number; pad: number; fontScale: number };

/** Computes the layout writeGrid uses for `rows` of images [h,w]. */
export function gridLayout(rows: { label: string; images: Uint8Array[] }[], h: number, w: number, opts: GridOptions = {}): GridLayout {
  const scale = opts.scale ?? defaultGridScale(h, w);
  const cellWidth = w * scale;
  const cellHeight = h * scale;
  const fontScale = opts.fontScale ?? (cellHeight >= 48 ? 2 : 1);
  // Gaps grow with the text so large cells do not touch.
  const pad = opts.pad ?? 2 * fontScale;
  const maxText = Math.max(0, ...rows.map((r) => textWidth(r.label, fontScale)));
  const labelWidth = maxText > 0 ? maxText + pad : 0;
  const cols = Math.max(1, ...rows.map((r) => r.images.length));
  const rowHeight = Math.max(cellHeight, fontGlyphHeight * fontScale);
  return {
    width: pad + labelWidth + cols * (cellWidth + pad),
    height: pad + rows.length * (rowHeight + pad),
    labelWidth,
    cellWidth,
    cellHeight,
    rowHeight,
    pad,
    fontScale,
  };
}

/**
 * Composes pixel images (each [h,w,c] uint8) into one grid image on white: one row per entry of `rows`, its label
 * drawn in black on the left with the built-in bitmap font (font5x7.ts, with descenders) (no system fonts needed). Returns the pixels
 * [layout.height, layout.width, c] and the layout. No files: writeGrid saves it as a PNG, the web page draws it.
 */
export function renderGrid(
  rows: { label: string; images: Uint8Array[] }[],
  h: number,
  w: number,
  c: 1 | 3,
  opts: GridOptions = {},
): { pixels: Uint8Array; layout: GridLayout } {
  const layout = gridLayout(rows, h, w, opts);
  const scale = layout.cellWidth / w;
  const { width, height, pad, labelWidth, cellWidth, cellHeight, rowHeight, fontScale } = layout;
  const canvas = new Uint8Array(width * height * c).fill(255);
  const black = new Array<number>(c).fill(0);
  rows.forEach((row, r) => {
    const top = pad + r * (rowHeight + pad);
    drawText(canvas, height, width, c, row.label, pad, top + Math.floor((rowHeight - fontGlyphHeight * fontScale) / 2), black, fontScale);
    row.images.forEach((img, k) => {
      if (img.length !== h * w * c) throw new Error(`renderGrid: image ${k} of row "${row.label}" has ${img.length} bytes, expected ${h * w * c}`);
      const left = pad + labelWidth + k * (cellWidth + pad);
      const cellTop = top + Math.floor((rowHeight - cellHeight) / 2);
      for (let y = 0; y < cellHeight; y++) {
        const sy = Math.floor(y / scale);
        for (let x = 0; x < cellWidth; x++) {
          const src = (sy * w + Math.floor(x / scale)) * c;
          const dst = ((cellTop + y) * width + left + x) * c;
          for (let k2 = 0; k2 < c; k2++) canvas[dst + k2] = img[src + k2];
        }
      }
    });
  });
  return { pixels: canvas, layout };
}

