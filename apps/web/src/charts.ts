import * as fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** One line of a chart: [x, y] points (y null = gap). */
export type ChartSeries = { name: string; points: [number, number | null][]; color?: string };

/** A line chart: shared x axis (usually the training step), one line per series. */
export type ChartSpec = { title: string; series: ChartSeries[]; xLabel?: string; yLabel?: string; logY?: boolean };

// Colour-blind-safe palette (Okabe-Ito), then a few more.
export const chartPalette = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442', '#8c564b', '#7f7f7f'];

/** Escapes text for HTML element content and attribute values. */
export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** uPlot's data layout: one sorted x array (the union of every series' x) and one y array per series, null where absent. */
function aligned(spec: ChartSpec): (number | null)[][] {
  const xs = [...new Set(spec.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  return [
    xs,
    ...spec.series.map((s) => {
      const ys: (number | null)[] = new Array(xs.length).fill(null);
      for (const [x, y] of s.points) ys[at.get(x) as number] = y !== null && Number.isFinite(y) && (!spec.logY || y > 0) ? y : null;
      return ys;
    }),
  ];
}

/** JSON for a <script> element: `<` escaped so no "</script>" can end it early. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

/**
 * Line charts drawn by uPlot (https://github.com/leeoniya/uPlot, MIT), with the library's JS and CSS inlined: the
 * fragment needs no network. Put it once in a page's <body>; charts render into <div class="chart"> elements.
 * Series without points are dropped; a chart with no points at all says so instead of drawing.
 */
export function chartsHtml(charts: ChartSpec[]): string {
  const dist = require.resolve('uplot/dist/uPlot.iife.min.js').replace(/uPlot\.iife\.min\.js$/, '');
  const js = fs.readFileSync(`${dist}uPlot.iife.min.js`, 'utf8');
  const css = fs.readFileSync(`${dist}uPlot.min.css`, 'utf8');
  const specs = charts.map((c) => {
    const series = c.series.filter((s) => s.points.some((p) => p[1] !== null && Number.isFinite(p[1])));
    const spec = { ...c, series };
    const colors = series.map((s, k) => s.color ?? chartPalette[k % chartPalette.length]);
    return { title: c.title, xLabel: c.xLabel ?? 'step', yLabel: c.yLabel ?? '', logY: !!c.logY, names: series.map((s) => s.name), colors, data: aligned(spec) };
  });
  const boxes = specs.map((s, i) => `<div class="chart" id="chart-${i}" data-title="${escapeHtml(s.title)}"></div>`).join('\n');
  return `<style>${css}
.charts{display:flex;flex-wrap:wrap;gap:12px 20px}.chart{min-width:300px}.chart .nodata{color:#777;font-size:.9em;padding:1em 0}
</style>
<div class="charts">${boxes}</div>
<script>${js.replace(/<\/script/gi, '<\\/script')}</script>
<script type="application/json" id="chart-data">${scriptJson({ specs })}</script>
<script>
(() => {
  const { specs } = JSON.parse(document.getElementById('chart-data').textContent);
  specs.forEach((s, i) => {
    const el = document.getElementById('chart-' + i);
    if (s.names.length === 0) {
      el.innerHTML = '<b>' + el.dataset.title + '</b><div class="nodata">no data</div>';
      return;
    }
    new uPlot({
      title: s.title, width: 520, height: 260,
      scales: { x: { time: false }, y: s.logY ? { distr: 3 } : {} },
      // Ticks with 3 significant digits: uPlot's default rounds small values (learning rates) to the same label.
      axes: [{ label: s.xLabel }, { label: s.yLabel, size: 64, values: (u, vals) => vals.map((v) => v == null ? '' : String(+v.toPrecision(3))) }],
      series: [{ label: s.xLabel }, ...s.names.map((n, k) => ({ label: n, stroke: s.colors[k], width: 1.5, spanGaps: true, points: { show: s.data[0].length < 30 } }))],
    }, s.data, el);
  });
})();
</script>`;
}
