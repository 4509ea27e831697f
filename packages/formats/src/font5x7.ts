/**
 * A tiny built-in bitmap font for printable ASCII (0x20..0x7E), so image labels need no system fonts
 * (a fresh machine or CI may have none). Glyphs are 5 columns wide; capitals and digits are 7 rows tall on the
 * baseline, and g, j, p, q, y, comma and semicolon drop two rows below it (`descenders`), so "bag" does not read "ba9".
 * Each glyph in `glyphHex` is 7 rows, top to bottom, two hex digits a row; bit 4 is the leftmost of the 5 columns.
 * Glyphs drawn for this project.
 */
const glyphHex: readonly string[] = [
  '00000000000000', '04040404040004', '0a0a0000000000', '0a0a1f0a1f0a0a', '040f140e051e04', '18190204081303', '0c12140815120d', '04040000000000', //   ! " # $ % & '
  '02040808080402', '08040202020408', '0004150e150400', '0004041f040400', '000000000c0408', '0000001f000000', '00000000000c0c', '00010204081000', // ( ) * + , - . /
  '0e11131519110e', '040c040404040e', '0e11010204081f', '1f02040201110e', '02060a121f0202', '1f101e0101110e', '0608101e11110e', '1f010204080808', // 0 1 2 3 4 5 6 7
  '0e11110e11110e', '0e11110f01020c', '000c0c000c0c00', '000c0c000c0408', '02040810080402', '00001f001f0000', '08040201020408', '0e110102040004', // 8 9 : ; < = > ?
  '0e11010d15150e', '0e11111f111111', '1e11111e11111e', '0e11101010110e', '1c12111111121c', '1f10101e10101f', '1f10101e101010', '0e11101711110f', // @ A B C D E F G
  '1111111f111111', '0e04040404040e', '0702020202120c', '11121418141211', '1010101010101f', '111b1515111111', '11111915131111', '0e11111111110e', // H I J K L M N O
  '1e11111e101010', '0e11111115120d', '1e11111e141211', '0f10100e01011e', '1f040404040404', '1111111111110e', '11111111110a04', '1111111515150a', // P Q R S T U V W
  '11110a040a1111', '11110a04040404', '1f01020408101f', '0e08080808080e', '00100804020100', '0e02020202020e', '040a1100000000', '0000000000001f', // X Y Z [ \ ] ^ _
  '08040000000000', '00000e010f110f', '1010161911111e', '00000e1010110e', '01010d1311110f', '00000e111f100e', '0609081c080808', '000f11110f010e', // ` a b c d e f g
  '10101619111111', '04000c0404040e', '0200060202120c', '10101214181412', '0c04040404040e', '00001a15151111', '00001619111111', '00000e1111110e', // h i j k l m n o
  '00001e111e1010', '00000d130f0101', '00001619101010', '00000e100e011e', '08081c08080906', '0000111111130d', '00001111110a04', '0000111115150a', // p q r s t u v w
  '0000110a040a11', '000011110f010e', '00001f0204081f', '02040408040402', '04040404040404', '08040402040408', '00000815020000', // x y z { | } ~
];

/**
 * The glyphs that reach below the baseline, as 9 rows (the 7 of the line and 2 below it). Their bodies sit on the
 * x-height (rows 2-6) like a, c, e; the tails fill rows 7-8.
 */
const descenders: Readonly<Record<string, string>> = {
  g: '00000f1111110f010e',
  j: '02000602020202120c',
  p: '00001e1111111e1010',
  q: '00000f1111110f0101',
  y: '0000111111130d010e',
  ',': '00000000000c0c0408',
  ';': '000c0c00000c0c0408',
};

export const fontGlyphWidth = 5;
/** Rows above and on the baseline (capitals, digits). */
export const fontBaselineRows = 7;
/** Rows of a glyph cell: the 7 of the line and 2 for descenders. */
export const fontGlyphHeight = 9;
/** Horizontal advance per character: the glyph plus one blank column. */
export const fontAdvance = 6;

/** The 9 row bitmasks of `ch` (rows 7-8 below the baseline); characters outside printable ASCII draw as '?'. */
export function glyphRows(ch: string): number[] {
  let code = ch.charCodeAt(0);
  if (!(code >= 0x20 && code <= 0x7e)) code = 0x3f;
  const hex = descenders[String.fromCharCode(code)] ?? `${glyphHex[code - 0x20]}0000`;
  const rows: number[] = [];
  for (let r = 0; r < fontGlyphHeight; r++) rows.push(parseInt(hex.slice(2 * r, 2 * r + 2), 16));
  return rows;
}

/** Width in pixels of `text` at `scale` (no trailing gap). */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * fontAdvance - 1) * scale;
}

/**
 * Draws `text` into an interleaved pixel buffer `pixels: [H,W,C]` with its top-left corner at (x, y),
 * each font pixel a scale x scale block of `color` (C values). Pixels outside the buffer are clipped.
 */
export function drawText(
  pixels: Uint8Array,
  height: number,
  width: number,
  channels: number,
  text: string,
  x: number,
  y: number,
  color: ArrayLike<number>,
  scale = 1,
): void {
  for (let i = 0; i < text.length; i++) {
    const rows = glyphRows(text[i]);
    const gx = x + i * fontAdvance * scale;
    for (let r = 0; r < fontGlyphHeight; r++) {
      for (let c = 0; c < fontGlyphWidth; c++) {
        if (!((rows[r] >> (fontGlyphWidth - 1 - c)) & 1)) continue;
        for (let dy = 0; dy < scale; dy++) {
          const py = y + r * scale + dy;
          if (py < 0 || py >= height) continue;
          for (let dx = 0; dx < scale; dx++) {
            const px = gx + c * scale + dx;
            if (px < 0 || px >= width) continue;
            const o = (py * width + px) * channels;
            for (let k = 0; k < channels; k++) pixels[o + k] = color[k];
          }
        }
      }
    }
  }
}
