/**
 * report.html of a compare: verdicts, one plot per metric (a dot per seed, the mean and its 95 % interval as a bar, per
 * variant), training curves (uPlot), and each run's reconstruction and sample grids. Self-contained (no network).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compareMetrics, verdictText, formatInterval, type CompareReport, type CompareMetric } from '@factorgen/pipelines';
import { chartPalette, chartsHtml, escapeHtml, type ChartSpec } from './charts';
import { pngImg } from './report';

/**
 * An SVG strip plot for one metric: per variant a row with one dot per seed, and the mean with its interval as a bar.
 * Returns '' when no variant has the metric.
 */
export function intervalPlotSvg(report: CompareReport, metric: CompareMetric): string {
  const rows = report.summary.variants.filter((v) => v.metrics[metric.key]);
  if (rows.length === 0) return '';
  const all = rows.flatMap((v) => {
    const s = v.metrics[metric.key]!;
    return [...s.values, ...(s.low === null ? [] : [s.low, s.high!])];
  });
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (hi === lo) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08;
  lo -= pad; hi += pad;
  const W = 640, left = 190, right = 20, rowH = 28, top = 24, H = top + rows.length * rowH + 26;
  const x = (v: number) => left + ((v - lo) / (hi - lo)) * (W - left - right);
  const parts: string[] = [];
  parts.push(`<text x="${left}" y="14" font-size="12" font-weight="bold">${escapeHtml(metric.label)}${metric.unit ? ` (${metric.unit})` : ''} ${metric.higherIsBetter ? '(higher is better)' : '(lower is better)'}</text>`);
  rows.forEach((v, i) => {
    const s = v.metrics[metric.key]!;
    const y = top + i * rowH + rowH / 2;
    const color = chartPalette[report.variants.findIndex((x) => x.id === v.variant) % chartPalette.length];
    parts.push(`<text x="${left - 8}" y="${y + 4}" font-size="12" text-anchor="end">${escapeHtml(v.variant)}</text>`);
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    if (s.low !== null && s.high !== null) parts.push(`<line class="interval" x1="${x(s.low).toFixed(1)}" x2="${x(s.high).toFixed(1)}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="4" opacity="0.45"><title>${escapeHtml(formatInterval(s, metric.digits))}</title></line>`);
    parts.push(`<line x1="${x(s.mean).toFixed(1)}" x2="${x(s.mean).toFixed(1)}" y1="${y - 8}" y2="${y + 8}" stroke="${color}" stroke-width="2"/>`);
    s.values.forEach((val, k) => parts.push(`<circle cx="${x(val).toFixed(1)}" cy="${y}" r="4" fill="${color}"><title>seed ${s.seeds[k]}: ${val.toFixed(metric.digits)}</title></circle>`));
  });
  const yAxis = top + rows.length * rowH + 4;
  parts.push(`<line x1="${left}" x2="${W - right}" y1="${yAxis}" y2="${yAxis}" stroke="#999"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    parts.push(`<text x="${x(v).toFixed(1)}" y="${yAxis + 16}" font-size="11" text-anchor="middle">${v.toFixed(metric.digits)}</text>`);
  }
  return `<svg class="interval-plot" data-metric="${metric.key}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">${parts.join('')}</svg>`;
}

/** The report's curves as uPlot charts: reconstruction MSE per tokenizer run, loss per generator run. */
function curveCharts(report: CompareReport): ChartSpec[] {
  const colorOf = (run: string) => chartPalette[report.variants.findIndex((v) => run.startsWith(`${v.id}-s`) && /^-s\d+$/.test(run.slice(v.id.length))) % chartPalette.length];
  const chart = (title: string, key: 'tokenizer' | 'generator'): ChartSpec => ({
    title,
    series: Object.entries(report.curves).filter(([, c]) => c[key].length > 0).map(([run, c]) => ({ name: run, points: c[key], color: colorOf(run) })),
  });
  return [chart('reconstruction MSE', 'tokenizer'), ...(report.settings.generation ? [chart('generator loss', 'generator')] : [])];
}

/**
 * Writes OUT/report.html for `report` (whose runs live in OUT/runs/<variant>-s<seed>/ with recon.png and
 * samples.png, the pipeline's writeSampleExcerpts, drawn where present). Returns the file's path.
 */
export function writeCompareHtml(out: string, report: CompareReport): string {
  const grids = (name: string, rel: (run: string) => string) => {
    const figs = report.runs.map((r) => `${r.variant}-s${r.seed}`).map((run) => {
      const file = path.join(out, 'runs', run, rel(run));
      return fs.existsSync(file) ? `<figure>${pngImg(file, `${run} ${name}`)}<figcaption>${escapeHtml(run)}</figcaption></figure>` : '';
    }).join('');
    return figs ? `<h2>${escapeHtml(name)}</h2><div class="grids">${figs}</div>` : '';
  };
  const verdicts = report.summary.comparisons.map((c) => `<tr class="${c.verdict === 'better' ? 'better' : c.verdict === 'worse' ? 'worse' : 'open'}"><td>${escapeHtml(verdictText(c))}</td></tr>`).join('');
  const md = (s: string) => escapeHtml(s).replace(/`([^`]+)`/g, '<code>$1</code>');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>factorgen compare (${escapeHtml(report.settings.budget)})</title><link rel="icon" href="data:,">
<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;line-height:1.4}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}
tr.better td{background:#e6f4ea}tr.worse td{background:#fdecea}.grids{display:flex;flex-wrap:wrap;gap:16px}.grids figure{margin:0}img{image-rendering:pixelated}
.plots{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>
<h1>factorgen compare: budget ${escapeHtml(report.settings.budget)} on ${escapeHtml(report.settings.dataset)}</h1>
<p>${report.runs.length} of ${report.settings.seeds * report.variants.length} runs; commit <code>${escapeHtml(report.meta.commit)}</code>; <code>${escapeHtml(report.meta.command)}</code>; ${escapeHtml(report.meta.backend)}, ${report.meta.threads} thread(s); evaluator ${escapeHtml(report.meta.evaluator.dir)}.</p>
<h2>Verdicts (paired t-test, 95 %)</h2>${verdicts ? `<table>${verdicts}</table>` : '<p>none yet: a verdict needs two finished seeds of a variant and its baseline</p>'}
<h2>Per metric: a dot per seed, the mean and its 95 % interval</h2><div class="plots">${compareMetrics.map((m) => intervalPlotSvg(report, m)).join('')}</div>
<h2>Training curves</h2>${chartsHtml(curveCharts(report))}
${grids('Reconstructions (originals over reconstructions)', () => 'recon.png')}
${grids('Samples (the first 8 per class)', () => 'samples.png')}
<details><summary>report.md</summary><pre>${md(fs.existsSync(path.join(out, 'report.md')) ? fs.readFileSync(path.join(out, 'report.md'), 'utf8') : '')}</pre></details>
</body></html>`;
  const file = path.join(out, 'report.html');
  fs.writeFileSync(file, html);
  return file;
}
