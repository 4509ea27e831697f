import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CompareResult, CompareRow } from './run';

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const pct = (xs: number[]) => xs.map((u) => `${(100 * u).toFixed(0)}%`).join(' / ');

/** The comparison table as Markdown rows (the same numbers as report.json). */
export function markdownTable(rows: CompareRow[]): string {
  const withSamples = rows.some((r) => r.sample);
  const head = ['variant', 'bits/pos', 'PSNR dB', 'SSIM', 'rFID', 'usage per sub-codebook', 'train img/s'];
  if (withSamples) head.push('FID', 'class acc', 'precision', 'recall');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const cells = [r.label, fmt(r.bitsPerPosition, 0), fmt(r.psnr), fmt(r.ssim, 3), fmt(r.rfid), pct(r.usage), fmt(r.imagesPerSecond, 1)];
    if (withSamples) cells.push(...(r.sample ? [fmt(r.sample.fid), fmt(r.sample.classAccuracy, 3), fmt(r.sample.precision, 3), fmt(r.sample.recall, 3)] : ['', '', '', '']));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2'];

/** A small inline SVG line chart: one line per series, shared axes. */
export function svgLineChart(title: string, series: { name: string; points: [number, number][] }[], w = 520, h = 260): string {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<p>${title}: no data</p>`;
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const m = { l: 50, r: 10, t: 24, b: 30 };
  const sx = (x: number) => m.l + ((x - x0) / Math.max(1e-12, x1 - x0)) * (w - m.l - m.r);
  const sy = (y: number) => h - m.b - ((y - y0) / Math.max(1e-12, y1 - y0)) * (h - m.t - m.b);
  const lines = series.map((s, i) => {
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join('');
    return `<path d="${d}" fill="none" stroke="${palette[i % palette.length]}" stroke-width="1.5"/>` +
      `<text x="${w - m.r - 4}" y="${m.t + 12 * (i + 1)}" text-anchor="end" font-size="10" fill="${palette[i % palette.length]}">${s.name}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">` +
    `<text x="${m.l}" y="14" font-size="12">${title}</text>` +
    `<line x1="${m.l}" y1="${h - m.b}" x2="${w - m.r}" y2="${h - m.b}" stroke="#888"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${h - m.b}" stroke="#888"/>` +
    `<text x="${m.l - 4}" y="${sy(y1) + 4}" text-anchor="end" font-size="10">${fmt(y1, 3)}</text>` +
    `<text x="${m.l - 4}" y="${sy(y0)}" text-anchor="end" font-size="10">${fmt(y0, 3)}</text>` +
    `<text x="${m.l}" y="${h - 10}" font-size="10">step ${x0}</text><text x="${w - m.r}" y="${h - 10}" text-anchor="end" font-size="10">${x1}</text>` +
    lines.join('') + '</svg>';
}

/**
 * Writes report.md, report.html (self-contained: plots inline as SVG, grids as base64 PNG) and report.json.
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
  const img = (p: string) => `<img alt="" src="data:image/png;base64,${fs.readFileSync(p).toString('base64')}"/>`;
  const chart = (metric: string, title: string) =>
    svgLineChart(title, Object.entries(curves).flatMap(([id, c]) => (c[metric] ? [{ name: id, points: c[metric] }] : [])));
  const usageCharts = Object.keys(curves[result.rows[0]?.id ?? ''] ?? {}).filter((k) => k.startsWith('usage'));
  const htmlTable = table
    .split('\n')
    .filter((_, i) => i !== 1)
    .map((l, i) => `<tr>${l.split('|').slice(1, -1).map((c) => (i === 0 ? `<th>${c.trim()}</th>` : `<td>${c.trim()}</td>`)).join('')}</tr>`)
    .join('\n');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>factorgen compare</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.grids{display:flex;flex-wrap:wrap;gap:16px}.grids figure{margin:0}img{image-rendering:pixelated}</style></head><body>
<h1>factorgen compare</h1><ul>${Object.entries(meta).map(([k, v]) => `<li>${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}</li>`).join('')}<li>wall time: ${fmt(result.seconds / 60, 1)} min</li></ul>
<table>${htmlTable}</table>
<h2>Training curves</h2><div class="grids">${chart('recon', 'reconstruction MSE')}${usageCharts.map((k) => chart(k, `${k} (share of codes used)`)).join('')}</div>
<h2>Reconstructions</h2><div class="grids">${result.recon.map((g) => `<figure>${img(g.grid)}<figcaption>${g.id}</figcaption></figure>`).join('')}</div>
${result.samples.length ? `<h2>Samples</h2><div class="grids">${result.samples.map((g) => `<figure>${img(g.grid)}<figcaption>${g.id}</figcaption></figure>`).join('')}</div>` : ''}
</body></html>`;
  const files = [path.join(out, 'report.md'), path.join(out, 'report.html'), path.join(out, 'report.json')];
  fs.writeFileSync(files[0], md);
  fs.writeFileSync(files[1], html);
  fs.writeFileSync(files[2], JSON.stringify({ meta, seconds: result.seconds, rows: result.rows }, null, 2));
  return files;
}
