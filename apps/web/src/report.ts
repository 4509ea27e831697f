import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkFolder, describeReadError } from '@factorgen/io';
import { readMetrics, resolveCheckpointDir } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { chartsHtml, escapeHtml, type ChartSpec } from './charts';

/** One run as the report sees it: its metrics.jsonl records and the PNG grids in its folder. */
export type ReportRun = { name: string; dir: string; kind: string; records: Record<string, unknown>[]; grids: { name: string; file: string }[] };

/** Keys of a metrics record that are bookkeeping, not curves. */
const notCurves = new Set(['step', 'seconds']);

/** The checkpoint's kind (tokenizer, generator, teacher, …) if the run has one, else a guess from the metrics. */
function runKind(dir: string, records: Record<string, unknown>[]): string {
  try {
    const json = JSON.parse(fs.readFileSync(path.join(resolveCheckpointDir(dir), 'config.json'), 'utf8')) as { kind?: unknown };
    if (typeof json.kind === 'string') return json.kind;
  } catch {
    // no checkpoint (e.g. only metrics were kept): guess below
  }
  const keys = new Set(records.flatMap((r) => Object.keys(r)));
  if (keys.has('recon')) return 'tokenizer';
  if (keys.has('loss0')) return 'generator';
  return 'run';
}

/** The overview pictures factorgen writes into an output folder: sample grids, reconstructions, probe grids. */
const OVERVIEW_PNG = /^(grid|recon|grid-k\d+)\.png$/;

/**
 * Reads a run folder: `metrics.jsonl` (required) and its images: `*.png` directly in it, and one folder down the
 * overview pictures of an output written there (`grid.png` of `factorgen sample --out RUN/samples`, `recon.png` of
 * `tokenizer reconstruct --out RUN/recon`, `grid-k<k>.png` of `eval probe`). Names the folder and the cause in a
 * one-line UserError.
 */
export function readRun(dir: string, name = path.basename(path.resolve(dir))): ReportRun {
  checkFolder(dir, 'a run folder with metrics.jsonl');
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) throw new UserError(`${file}: missing (not a training run folder)`);
  let all: Record<string, unknown>[];
  try {
    all = readMetrics(file);
  } catch (e) {
    throw new UserError(`${file}: ${describeReadError(e)}`);
  }
  const records = all.filter((r) => typeof r.step === 'number');
  if (records.length === 0) throw new UserError(`${file}: no metrics records`);
  const grids: { name: string; file: string }[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isFile() && e.name.endsWith('.png')) grids.push({ name: e.name, file: path.join(dir, e.name) });
    else if (e.isDirectory() && e.name !== 'checkpoint') {
      let inside: string[];
      try {
        inside = fs.readdirSync(path.join(dir, e.name)).filter((f) => OVERVIEW_PNG.test(f)).sort();
      } catch {
        continue; // unreadable subfolder: not a picture of ours
      }
      for (const f of inside) grids.push({ name: `${e.name}/${f}`, file: path.join(dir, e.name, f) });
    }
  }
  return { name, dir, kind: runKind(dir, records), records, grids };
}

/** A chart family: the metric with its sub-codebook index removed ("usage1" -> "usage"). */
const family = (key: string) => key.replace(/\d+$/, '');

const titles: Record<string, string> = {
  loss: 'loss (total; per sub-codebook where numbered)',
  lr: 'learning rate',
  usage: 'codebook usage per sub-codebook (share of codes used)',
  perplexity: 'codebook perplexity per sub-codebook',
  valLoss: 'validation loss',
  gradNorm: 'gradient norm (before clipping)',
  acc: 'next-token accuracy per sub-codebook',
};

/** Orders families: losses first, then lr, usage, perplexity, validation, the rest alphabetically. */
const order = ['loss', 'valLoss', 'recon', 'codebook', 'commitment', 'entropy', 'disentangle', 'perceptual', 'align', 'lr', 'usage', 'perplexity'];

/**
 * The charts of one or several runs: one per metric family (every loss term, learning rate, per-sub-codebook usage
 * and perplexity, validation loss, …), the runs overlaid (series "run key" when there are several). Runs of different
 * kinds (a tokenizer and a generator) never share an axis: each kind gets its own charts, titled "kind: …", since
 * their losses measure different things on different scales.
 */
export function runCharts(runs: ReportRun[]): ChartSpec[] {
  const kinds = [...new Set(runs.map((r) => r.kind))];
  if (kinds.length > 1) {
    return kinds.flatMap((k) => chartsOfKind(runs.filter((r) => r.kind === k), runs.length > 1).map((c) => ({ ...c, title: `${k}: ${c.title}` })));
  }
  return chartsOfKind(runs, runs.length > 1);
}

/** runCharts for runs of one kind; `named`: series carry the run's name (several runs in the report). */
function chartsOfKind(runs: ReportRun[], named: boolean): ChartSpec[] {
  const fams = new Map<string, Set<string>>();
  for (const r of runs) {
    for (const rec of r.records) {
      for (const [k, v] of Object.entries(rec)) {
        if (notCurves.has(k) || !(typeof v === 'number' || v === null)) continue;
        const f = family(k);
        if (!fams.has(f)) fams.set(f, new Set());
        fams.get(f)!.add(k);
      }
    }
  }
  const rank = (f: string) => (order.includes(f) ? order.indexOf(f) : order.length);
  return [...fams.keys()]
    .filter((f) => !isAllZero(runs, fams.get(f) as Set<string>))
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .map((f) => {
      const keys = [...(fams.get(f) as Set<string>)].sort();
      const series = runs.flatMap((r) =>
        keys.map((k) => ({
          name: named ? `${r.name} ${k}` : k,
          points: r.records.filter((rec) => k in rec).map((rec) => [rec.step as number, rec[k] as number | null] as [number, number | null]),
        })),
      );
      return { title: titles[f] ?? f, series, logY: f === 'lr' ? false : undefined };
    });
}

/** Whether every logged value of these keys is 0 or missing (a loss term that was switched off): no chart for it. */
function isAllZero(runs: ReportRun[], keys: Set<string>): boolean {
  return runs.every((r) => r.records.every((rec) => [...keys].every((k) => rec[k] === undefined || rec[k] === 0 || rec[k] === null)));
}

/** Width and height of a PNG from its IHDR chunk (bytes 16..23), or null when the bytes are not a PNG. */
function pngSize(bytes: Buffer): { width: number; height: number } | null {
  if (bytes.length < 24 || bytes.readUInt32BE(0) !== 0x89504e47) return null;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

const fmt = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v === null ? '—' : String(v ?? ''));

/** The last value of `key` in a run's records, or undefined. */
function last(records: Record<string, unknown>[], key: string): unknown {
  for (let i = records.length - 1; i >= 0; i--) if (key in records[i]) return records[i][key];
  return undefined;
}

/** An inline PNG, shown at twice its size (up to 1000 px wide) with sharp pixels: grids of 28 px images are tiny. */
export function pngImg(file: string, alt: string): string {
  const bytes = fs.readFileSync(file);
  const size = pngSize(bytes);
  const width = size ? ` width="${Math.min(1000, 2 * size.width)}"` : '';
  return `<img alt="${escapeHtml(alt)}"${width} src="data:image/png;base64,${bytes.toString('base64')}">`;
}

/**
 * One self-contained HTML page for one or more runs: a summary table, the charts (runCharts, drawn by the inlined
 * uPlot) and the runs' grids as inline PNGs. Nothing is loaded from the network when it is viewed.
 */
export function runReportHtml(runs: ReportRun[], title = runs.length === 1 ? `factorgen run: ${runs[0].name}` : 'factorgen runs'): string {
  const cols = ['loss', 'valLoss', 'lr'];
  const rows = runs.map((r) => {
    const steps = r.records[r.records.length - 1].step;
    const secs = last(r.records, 'seconds');
    return `<tr><td>${escapeHtml(r.name)}</td><td>${escapeHtml(r.kind)}</td><td>${fmt(steps)}</td>${cols.map((c) => `<td>${fmt(last(r.records, c))}</td>`).join('')}<td>${typeof secs === 'number' ? (secs / 60).toFixed(1) : '—'}</td><td class="path">${escapeHtml(r.dir)}</td></tr>`;
  });
  const grids = runs.flatMap((r) => r.grids.map((g) => `<figure>${pngImg(g.file, `${r.name} ${g.name}`)}<figcaption>${escapeHtml(`${r.name}: ${g.name}`)}</figcaption></figure>`));
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><link rel="icon" href="data:,">
<style>body{font-family:system-ui,sans-serif;max-width:1120px;margin:1.5em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child,td.path{text-align:left}td.path{color:#666;font-size:.85em}
.grids{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}figure img{image-rendering:pixelated;max-width:100%;height:auto}figcaption{font-size:.85em;color:#555}</style></head><body>
<h1>${escapeHtml(title)}</h1>
<table><tr><th>run</th><th>kind</th><th>last step</th><th>loss</th><th>val loss</th><th>lr</th><th>minutes</th><th>folder</th></tr>
${rows.join('\n')}</table>
<h2>Training curves</h2>
${chartsHtml(runCharts(runs))}
${grids.length ? `<h2>Images</h2><div class="grids">${grids.join('\n')}</div>` : ''}
</body></html>
`;
}
