/**
 * report.json and report.md of a compare: settings and provenance (commit, command, versions, backend, threads, seeds,
 * evaluator), floors, every run's scores, the statistics and verdicts, and, apart, the timing figures (which differ
 * between reruns; everything else is reproducible bit for bit on the same backend).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { repoRoot, writeGrid } from '@factorgen/io';
import { readSampleFolder } from '../evaluate';
import { compareMetrics, formatInterval, summarizeCompare, verdictText, type CompareSummary } from './summary';
import { readCompareCurves, type CompareState, type RunResult, type Floors, type CompareSettings } from './run';
import type { CompareBudget } from './variants';

export type CompareMeta = {
  /** git commit of the code that ran, "+dirty" when the tree had uncommitted changes; "unknown" outside a checkout */
  commit: string;
  command: string;
  versions: { factorgen: string; node: string; tfjs: string };
  backend: string;
  threads: number;
  evaluator: CompareState['evaluator'];
};

export type CompareReport = {
  format: 1;
  meta: CompareMeta;
  settings: CompareSettings;
  budget: CompareBudget;
  variants: { id: string; label: string; baseline: string | null }[];
  floors: Floors | null;
  runs: Omit<RunResult, 'timing'>[];
  summary: CompareSummary;
  curves: ReturnType<typeof readCompareCurves>;
  /** wall-clock figures (differ between reruns): per run, and this invocation's seconds */
  timing: { runs: Record<string, RunResult['timing']>; seconds: number; finishedAt: string };
};

/** The commit of the checkout at `dir` ("<hash>+dirty" with uncommitted changes, "unknown" without git). */
export function currentCommit(dir = repoRoot()): string {
  try {
    const hash = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return dirty ? `${hash}+dirty` : hash;
  } catch {
    return 'unknown';
  }
}

/** Provenance for a report: commit, versions, and what the caller knows (command line, backend, threads). */
export function compareMeta(state: CompareState, run: { command: string; backend: string; threads: number }): CompareMeta {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
  return { commit: currentCommit(), command: run.command, versions: { factorgen: pkg.version, node: process.version, tfjs: tf.version.tfjs }, backend: run.backend, threads: run.threads, evaluator: state.evaluator };
}

/** Builds the report object from the compare's state. */
export function buildCompareReport(state: CompareState, meta: CompareMeta): CompareReport {
  const runs = state.runs.map(({ timing: _t, ...r }) => r);
  return {
    format: 1, meta, settings: state.settings, budget: state.budget,
    variants: state.variants.map((v) => ({ id: v.id, label: v.label, baseline: v.baseline })),
    floors: state.floors, runs, summary: summarizeCompare(state.variants, state.runs), curves: readCompareCurves(state.out, state.runs),
    timing: { runs: Object.fromEntries(state.runs.map((r) => [`${r.variant}-s${r.seed}`, r.timing])), seconds: state.seconds, finishedAt: new Date().toISOString() },
  };
}

/** report.md: what a person reads first (verdicts, then intervals, floors, runs, provenance). */
export function compareMarkdown(r: CompareReport): string {
  const L: string[] = [];
  const expected = r.settings.seeds * r.variants.length;
  L.push(`# factorgen compare: budget \`${r.settings.budget}\` on ${r.settings.dataset}`, '');
  L.push(`${r.runs.length} of ${expected} runs finished (${r.variants.length} variants x ${r.settings.seeds} paired seeds); tokenizer ${r.budget.tokenizer.steps} steps of ${r.budget.tokenizer.batch} (base width ${r.budget.tokenizer.baseChannels})` +
    (r.settings.generation ? `; generator ${r.budget.generator.steps} steps of ${r.budget.generator.batch} (width ${r.budget.generator.width}, depth ${r.budget.generator.depth}), ${r.budget.samplesPerClass} samples per class at CFG ${r.budget.cfgScale}` : '; no generation') + '.', '');
  L.push('## Verdicts', '', 'Each variant against its baseline, paired by seed: mean difference (variant - baseline) with its 95 % t interval; the verdict is the two-sided paired t-test at 5 % (why that test: docs/compare.md).', '');
  if (r.summary.comparisons.length === 0) L.push('(none yet: a verdict needs two finished seeds of both)');
  for (const c of r.summary.comparisons) L.push(`- ${verdictText(c)}`);
  L.push('', '## Per variant: mean [95 % interval] over seeds', '');
  const metrics = compareMetrics.filter((m) => r.summary.variants.some((v) => v.metrics[m.key]));
  L.push(`| variant | ${metrics.map((m) => m.label + (m.unit ? ` (${m.unit})` : '') + (m.higherIsBetter ? ' ↑' : ' ↓')).join(' | ')} |`);
  L.push(`|---|${metrics.map(() => '---').join('|')}|`);
  for (const v of r.summary.variants) L.push(`| ${v.label} | ${metrics.map((m) => (v.metrics[m.key] ? formatInterval(v.metrics[m.key]!, m.digits) : '')).join(' | ')} |`);
  if (r.floors) {
    const f = r.floors;
    L.push(`| *real data (floor)* | ${metrics.map((m) => (m.key === 'rfid' ? `${f.rfid.toFixed(2)} (n=${f.reconImages})` : m.key === 'fid' ? `${f.fid.toFixed(2)} (n=${f.samples})` : m.key === 'precision' || m.key === 'recall' || m.key === 'classAccuracy' ? (Number.isFinite(f[m.key]) ? f[m.key].toFixed(3) : '') : '')).join(' | ')} |`);
  }
  L.push('', '## Runs', '');
  L.push('| run | PSNR dB | SSIM | rFID | usage per sub-codebook | FID | class acc. | precision | recall | tokenizer img/s | generator tok/s |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const run of r.runs) {
    const t = run.tokenizer; const g = run.generation; const tm = r.timing.runs[`${run.variant}-s${run.seed}`];
    const n = (x: number | null | undefined, d: number) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '');
    L.push(`| ${run.variant} s${run.seed} | ${n(t?.psnr, 2)} | ${n(t?.ssim, 3)} | ${n(t?.rfid, 2)} | ${t ? t.usage.map((u) => `${(100 * u).toFixed(0)}%`).join(' / ') : ''} | ${n(g?.fid, 2)} | ${n(g?.classAccuracy, 3)} | ${n(g?.precision, 3)} | ${n(g?.recall, 3)} | ${n(tm?.tokenizerImagesPerSecond, 1)} | ${n(tm?.generatorTokensPerSecond, 0)} |`);
  }
  L.push('', '## Provenance', '');
  L.push(`- commit \`${r.meta.commit}\`; command \`${r.meta.command}\``);
  L.push(`- factorgen ${r.meta.versions.factorgen}, Node ${r.meta.versions.node}, tfjs ${r.meta.versions.tfjs}; backend ${r.meta.backend}, ${r.meta.threads} thread(s)`);
  L.push(`- seeds 0-${r.settings.seeds - 1} (seed s gives every variant the same data order and initialization stream); evaluator ${r.meta.evaluator.dir}${r.meta.evaluator.testAccuracy === null ? '' : ` (test accuracy ${(100 * r.meta.evaluator.testAccuracy).toFixed(1)} %)`}`);
  L.push(`- this invocation took ${(r.timing.seconds / 60).toFixed(1)} min (finished ${r.timing.finishedAt}); timing figures vary between runs, every other number reproduces bit for bit on the same backend`);
  return L.join('\n') + '\n';
}

/** Writes OUT/report.json and OUT/report.md; returns their paths. */
export function writeCompareReport(out: string, report: CompareReport): string[] {
  const json = path.join(out, 'report.json');
  const md = path.join(out, 'report.md');
  fs.writeFileSync(json, JSON.stringify(report, null, 1) + '\n');
  fs.writeFileSync(md, compareMarkdown(report));
  return [json, md];
}

/**
 * Writes OUT/runs/<run>/samples.png for every run with a sample folder and no such file yet: the first `perClass`
 * samples of each class of `data` (the compare's dataset: class names, image side, channels), one row per class, each
 * image drawn `scale` times its size. It is what report.html shows and what a committed compare keeps: samples/grid.png
 * holds every sample (500 at the medium budget, ~0.7 MB per run). Returns the files written.
 */
export async function writeSampleExcerpts(
  out: string, runs: RunResult[], data: { classNames: string[]; height: number; channels: 1 | 3 }, perClass = 8, scale = 3,
): Promise<string[]> {
  const written: string[] = [];
  for (const r of runs) {
    const dir = path.join(out, 'runs', `${r.variant}-s${r.seed}`);
    const file = path.join(dir, 'samples.png');
    if (!r.generation || fs.existsSync(file) || !fs.existsSync(path.join(dir, 'samples'))) continue;
    const set = await readSampleFolder(path.join(dir, 'samples'), data.classNames, data.height, data.channels);
    const per = set.height * set.width * set.channels;
    const rows = data.classNames.map((name, c) => {
      const images: Uint8Array[] = [];
      for (let i = 0; i < set.n && images.length < perClass; i++) if (set.labels[i] === c) images.push(set.images.subarray(i * per, (i + 1) * per));
      return { label: `${c} ${name}`, images };
    });
    await writeGrid(file, rows, set.height, set.width, data.channels, { scale });
    written.push(file);
  }
  return written;
}
