import * as fs from 'node:fs';
import * as path from 'node:path';
import { chartPalette, chartsHtml, pngImg, type ChartSpec } from '@factorgen/web';
import type { CompareResult, CompareRow } from './run';

const fmt = (x: number | null, d = 2) => (x === null ? 'n/a' : Number.isFinite(x) ? x.toFixed(d) : String(x));
const pct = (xs: number[]) => xs.map((u) => `${(100 * u).toFixed(0)}%`).join(' / ');

/** The comparison table as Markdown rows (the same numbers as report.json). */
export function markdownTable(rows: CompareRow[]): string {
  const withSamples = rows.some((r) => r.sample);
  const head = ['variant', 'bits/pos', 'PSNR dB (global MSE)', 'SSIM', 'rFID', 'usage per sub-codebook', 'train img/s'];
  if (withSamples) head.push('FID', 'class acc', 'precision', 'recall');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const cells = [r.label, fmt(r.bitsPerPosition, 0), fmt(r.psnr), fmt(r.ssim, 3), fmt(r.rfid), pct(r.usage), fmt(r.imagesPerSecond, 1)];
    if (withSamples) cells.push(...(r.sample ? [fmt(r.sample.fid), fmt(r.sample.classAccuracy, 3), fmt(r.sample.precision, 3), fmt(r.sample.recall, 3)] : ['', '', '', '']));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/**
 * Writes report.md, report.html (self-contained: uPlot charts with the library inlined, grids as base64 PNG) and report.json.
 * curves[variant][metric] = [step, value][].
 */
export function writeReport(out: string, result: CompareResult, curves: Record<string, Record<string, [number, number][]>>, meta: Record<string, unknown>): string[] {
  const table = markdownTable(result.rows);
  const metaLines = Object.entries(meta).map(([k, v]) => `- ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('\n');
  const rel = (p: string) => path.relative(out, p);
  const md = [
    '# factorgen compare', '', metaLines, `- wall time: ${fmt(result.seconds / 60, 1)} min`, '', table, '',
    'PSNR/SSIM/rFID on the same test images; usage = share of each sub-codebook hit over the last training batches.', '',
    '## Reconstructions (original row over reconstruction row)', '',
    ...result.recon.map((g) => `![${g.id}](${rel(g.grid)})`),
    ...(result.samples.length ? ['', '## Samples', '', ...result.samples.map((g) => `### ${g.id}\n\n![${g.id}](${rel(g.grid)})`)] : []),
    '',
  ].join('\n');
  const img = (p: string) => pngImg(p, path.basename(p));
  const chart = (metric: string, title: string): ChartSpec => ({
    title,
    // One colour per variant in every chart, also where a variant has no such curve (vq has no usage1).
    series: Object.entries(curves).flatMap(([id, c], i) => (c[metric]?.length ? [{ name: id, points: c[metric], color: chartPalette[i % chartPalette.length] }] : [])),
  });
  const usageCharts = [...new Set(Object.values(curves).flatMap((c) => Object.keys(c).filter((k) => k.startsWith('usage') && c[k].length > 0)))].sort();
  const htmlTable = table
    .split('\n')
    .filter((_, i) => i !== 1)
    .map((l, i) => `<tr>${l.split('|').slice(1, -1).map((c) => (i === 0 ? `<th>${c.trim()}</th>` : `<td>${c.trim()}</td>`)).join('')}</tr>`)
    .join('\n');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>factorgen compare</title><link rel="icon" href="data:,">
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.grids{display:flex;flex-wrap:wrap;gap:16px}.grids figure{margin:0}img{image-rendering:pixelated}</style></head><body>
<h1>factorgen compare</h1><ul>${Object.entries(meta).map(([k, v]) => `<li>${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}</li>`).join('')}<li>wall time: ${fmt(result.seconds / 60, 1)} min</li></ul>
<table>${htmlTable}</table>
<h2>Training curves</h2>${chartsHtml([chart('recon', 'reconstruction MSE'), ...usageCharts.map((k) => chart(k, `${k} (share of codes used)`))])}
<h2>Reconstructions</h2><div class="grids">${result.recon.map((g) => `<figure>${img(g.grid)}<figcaption>${g.id}</figcaption></figure>`).join('')}</div>
${result.samples.length ? `<h2>Samples</h2><div class="grids">${result.samples.map((g) => `<figure>${img(g.grid)}<figcaption>${g.id}</figcaption></figure>`).join('')}</div>` : ''}
</body></html>`;
  const files = [path.join(out, 'report.md'), path.join(out, 'report.html'), path.join(out, 'report.json')];
  fs.writeFileSync(files[0], md);
  fs.writeFileSync(files[1], html);
  fs.writeFileSync(files[2], JSON.stringify({ meta, seconds: result.seconds, rows: result.rows }, null, 2));
  return files;
}
