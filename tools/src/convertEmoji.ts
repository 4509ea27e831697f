/**
 * One-off converter: Noto emoji PNGs from the npm package emoji-datasource-google -> data/emoji/emoji32.{bin.gz,json}.
 * Not needed at run or test time (the output is committed). Usage:
 *   mkdir -p /tmp/emoji && cd /tmp/emoji && npm install emoji-datasource-google@16.0.0
 *   npx tsx tools/src/convertEmoji.ts /tmp/emoji/node_modules/emoji-datasource-google [--out data/emoji]
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Command } from 'commander';
import sharp from 'sharp';
import type { EmojiMeta } from '@factorgen/io';

type EmojiEntry = { image: string; category: string; sort_order: number; short_name: string; has_img_google: boolean };

const SIZE = 32;
const SKIP_CATEGORIES = ['Component']; // skin-tone / hair swatches: not pictures of anything
const MIN_PER_CLASS = 50; // smaller categories would be too few to learn or to test on
const TEST_EVERY = 10;

async function convert(pkgDir: string, outDir: string): Promise<void> {
  const jsonFile = path.join(pkgDir, 'emoji.json');
  const imgDir = path.join(pkgDir, 'img', 'google', '64');
  if (!fs.existsSync(jsonFile) || !fs.existsSync(imgDir))
    throw new Error(`${pkgDir}: not an emoji-datasource-google package folder (needs emoji.json and img/google/64)`);
  const version = (JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  // Only base emoji: skin-tone variations are near-duplicates that would leak between train and test.
  const entries = (JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as EmojiEntry[]).filter((e) => e.has_img_google);

  const byCategory = new Map<string, EmojiEntry[]>();
  for (const e of entries) byCategory.set(e.category, [...(byCategory.get(e.category) ?? []), e]);
  const skippedNotes: string[] = [];
  const classes: { name: string; items: EmojiEntry[] }[] = [];
  // Class order: the categories' Unicode order (by their first emoji's sort_order).
  const ordered = [...byCategory.entries()].sort(
    (a, b) => Math.min(...a[1].map((e) => e.sort_order)) - Math.min(...b[1].map((e) => e.sort_order)),
  );
  for (const [name, items] of ordered) {
    if (SKIP_CATEGORIES.includes(name) || items.length < MIN_PER_CLASS) {
      skippedNotes.push(`${name} (${items.length})`);
      continue;
    }
    classes.push({ name, items: items.sort((a, b) => a.sort_order - b.sort_order) });
  }

  const count = classes.reduce((s, c) => s + c.items.length, 0);
  const per = SIZE * SIZE * 3;
  const pixels = new Uint8Array(count * per);
  const labels: number[] = [];
  const names: string[] = [];
  const testIndices: number[] = [];
  let i = 0;
  for (const [label, cls] of classes.entries()) {
    for (const [k, e] of cls.items.entries()) {
      const { data, info } = await sharp(path.join(imgDir, e.image))
        .flatten({ background: '#ffffff' }) // alpha composited on white
        .resize(SIZE, SIZE, { fit: 'cover' })
        .removeAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3 || data.length !== per) throw new Error(`${e.image}: unexpected decoded shape ${info.width}x${info.height}x${info.channels}`);
      pixels.set(data, i * per);
      labels.push(label);
      names.push(e.short_name);
      if (k % TEST_EVERY === TEST_EVERY - 1) testIndices.push(i);
      i++;
    }
  }

  const meta: EmojiMeta = {
    format: 'factorgen-emoji-v1',
    source: `emoji-datasource-google@${version} img/google/64 (Noto Emoji, Apache-2.0), resized to ${SIZE}x${SIZE}`,
    size: SIZE,
    channels: 3,
    count,
    classNames: classes.map((c) => c.name),
    labels,
    names,
    testIndices,
    splitRule: `within each class (Unicode order), every ${TEST_EVERY}th image (k % ${TEST_EVERY} == ${TEST_EVERY - 1}) is test`,
    skipped: `skin-tone variations; categories ${skippedNotes.join(', ') || 'none'} (Component, or fewer than ${MIN_PER_CLASS} images)`,
  };
  fs.mkdirSync(outDir, { recursive: true });
  const gz = zlib.gzipSync(pixels, { level: 9 });
  fs.writeFileSync(path.join(outDir, 'emoji32.bin.gz'), new Uint8Array(gz.buffer as ArrayBuffer, gz.byteOffset, gz.byteLength));
  fs.writeFileSync(path.join(outDir, 'emoji32.json'), JSON.stringify(meta) + '\n');
  const size = fs.statSync(path.join(outDir, 'emoji32.bin.gz')).size;
  console.log(`${count} images, ${classes.length} classes (${testIndices.length} test), ${(size / 1e6).toFixed(2)} MB -> ${outDir}`);
  for (const [label, c] of classes.entries()) console.log(`  ${label} ${c.name}: ${c.items.length}`);
  console.log(`  skipped: ${meta.skipped}`);
}

const program = new Command()
  .name('convertEmoji')
  .description('Convert the Noto emoji PNGs of emoji-datasource-google into the committed 32x32 RGB emoji dataset.')
  .usage('<emoji-datasource-google folder> [--out dir]')
  .argument('<pkgDir>', 'the installed package folder, e.g. /tmp/emoji/node_modules/emoji-datasource-google')
  .option('--out <dir>', 'output folder', 'data/emoji')
  .action(async (pkgDir: string, opts: { out: string }) => {
    try {
      await convert(pkgDir, opts.out);
    } catch (e) {
      console.error((e as Error).message);
      process.exit(2);
    }
  });
await program.parseAsync();
