import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { writeGrid } from '@factorgen/io';
import { buildCompareReport, compareBudgets, compareVariants, type CompareState, type RunResult } from '@factorgen/pipelines';
import { writeCompareHtml } from '@factorgen/web';
import { launchChromium, watchErrors } from './browser';
import { describeWith } from '../support/components';

const root = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-report-'));

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), ...args], { cwd: work, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** A run folder with a tokenizer-like metrics.jsonl (K=2), a validation loss every 5 steps, and a recon.png. */
async function fakeRun(name: string, offset: number): Promise<string> {
  const dir = path.join(work, name);
  fs.mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (let step = 1; step <= 20; step++) {
    const rec: Record<string, number | null> = {
      step, loss: 1 / step + offset, lr: 1e-3 * (1 - step / 40), recon: 0.5 / step, codebook: 0.05, commitment: 0.0125,
      disentangle: 0, usage0: Math.min(1, step / 10), usage1: Math.min(1, step / 15), perplexity0: 10 * step, perplexity1: 8 * step, seconds: step,
    };
    if (step % 5 === 0) rec.valLoss = 1.2 / step + offset;
    lines.push(JSON.stringify(rec));
  }
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  const img = (v: number) => new Uint8Array(8 * 8).fill(v);
  await writeGrid(path.join(dir, 'recon.png'), [{ label: 'original', images: [img(40), img(200)] }, { label: 'recon', images: [img(60), img(180)] }], 8, 8, 1);
  return dir;
}

/**
 * Opens an HTML file and checks what a reader would: every chart drew something (non-blank canvas pixels), no
 * console error, nothing fetched from the network. Returns the chart titles and a screenshot path.
 */
async function inspect(page: Page, file: string, shot: string): Promise<{ charts: { title: string; inked: number }[]; errors: string[]; requests: string[] }> {
  const errors = watchErrors(page);
  const requests: string[] = [];
  page.on('request', (r) => {
    if (!/^(file|data):/.test(r.url())) requests.push(r.url());
  });
  await page.goto(`file://${file}`);
  await page.waitForSelector('.chart canvas', { timeout: 30_000 });
  const charts = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('.chart')].map((el) => {
      const c = el.querySelector('canvas');
      let inked = 0;
      if (c) {
        const d = (c.getContext('2d') as CanvasRenderingContext2D).getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) inked++;
      }
      return { title: el.dataset.title ?? '', inked };
    }),
  );
  await page.screenshot({ path: shot, fullPage: true });
  return { charts, errors, requests };
}

describeWith('chromium', 'HTML reports in headless Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('factorgen report: two runs overlaid, every chart drawn, no console errors, no network', async () => {
    const a = await fakeRun('run-a', 0);
    const b = await fakeRun('run-b', 0.3);
    const out = path.join(work, 'report.html');
    const r = cli('report', a, b, '--out', out);
    expect(r.code, r.err).toBe(0);
    const html = fs.readFileSync(out, 'utf8');
    expect(html).toContain('run-a usage0');
    expect(html).toContain('data:image/png;base64,');
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const shot = path.join(work, 'report.png');
    const { charts, errors, requests } = await inspect(page, out, shot);
    await page.close();
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    const titles = charts.map((c) => c.title);
    for (const t of ['learning rate', 'validation loss', 'recon', 'codebook usage per sub-codebook (share of codes used)', 'codebook perplexity per sub-codebook']) {
      expect(titles).toContain(t);
    }
    expect(titles).not.toContain('disentangle'); // all zero: switched off, no chart
    for (const c of charts) expect(c.inked, c.title).toBeGreaterThan(500);
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
  });

  it('factorgen report: a folder without metrics.jsonl is one line naming the file', () => {
    fs.mkdirSync(path.join(work, 'empty'), { recursive: true });
    const r = cli('report', 'empty', '--out', 'x.html');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`factorgen: ${path.join('empty', 'metrics.jsonl')}: missing (not a training run folder)\n`);
    expect(fs.existsSync(path.join(work, 'x.html'))).toBe(false);
    const dir = cli('report', 'empty', '--out', 'empty');
    expect(dir.code).toBe(2);
    expect(dir.err).toBe('factorgen: --out empty: is a folder, not a file\n');
  });

  it('the compare report draws its curves with the same charts, and per metric a dot per seed with an interval bar per variant', async () => {
    const dir = path.join(work, 'compare');
    const runs: RunResult[] = [];
    for (const [k, id] of ['vq', 'fq2'].entries()) {
      for (const seed of [0, 1, 2]) {
        const run = await fakeRun(`compare/runs/${id}-s${seed}/tokenizer`, k + seed / 10);
        fs.copyFileSync(path.join(run, 'recon.png'), path.join(dir, 'runs', `${id}-s${seed}`, 'recon.png'));
        runs.push({ variant: id, seed, tokenizer: { psnr: 17 + k + seed / 10, psnrPerImageMean: 17, ssim: 0.5 + seed / 100, rfid: 60 - k - seed, usage: [1], perplexity: [15] }, generation: null, timing: {} });
      }
    }
    const variants = compareVariants(compareBudgets.smoke, { imageSize: 28, channels: 1, bits: 4, teacherDim: 128 }).filter((v) => v.id === 'vq' || v.id === 'fq2');
    const state: CompareState = {
      out: dir, settings: { format: 1, dataset: 'test', budget: 'smoke', bits: 4, generation: false, seeds: 3, variants: ['vq', 'fq2'] }, budget: compareBudgets.smoke,
      variants, floors: null, runs, evaluator: { dir: 'none', testAccuracy: null }, seconds: 60,
    };
    const report = buildCompareReport(state, { commit: 'c0ffee', command: 'factorgen compare', versions: { factorgen: '0', node: 'v20', tfjs: '4' }, backend: 'wasm', threads: 1, evaluator: state.evaluator });
    writeCompareHtml(dir, report);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const { charts, errors, requests } = await inspect(page, path.join(dir, 'report.html'), path.join(work, 'compare.png'));
    const plots = await page.evaluate(() =>
      [...document.querySelectorAll<SVGElement>('svg.interval-plot')].map((el) => ({ metric: el.dataset.metric, dots: el.querySelectorAll('circle').length, bars: el.querySelectorAll('line.interval').length })),
    );
    await page.close();
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(charts.map((c) => c.title)).toEqual(['reconstruction MSE']);
    for (const c of charts) expect(c.inked, c.title).toBeGreaterThan(500);
    // The tokenizer metrics, 2 variants x 3 seeds each: 6 dots and 2 interval bars per plot.
    expect(plots).toEqual(['psnr', 'ssim', 'rfid'].map((metric) => ({ metric, dots: 6, bars: 2 })));
  }, 120_000);
});
