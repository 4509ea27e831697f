/**
 * `factorgen report` on a tokenizer and a generator run (issue 25): each model's curves on their own axes, and the
 * run's images (samples, reconstructions) in the page. Library level; test/web/report.test.ts checks the drawing in Chromium.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeGrid } from '@factorgen/io';
import { readRun, runCharts, runReportHtml } from '@factorgen/web';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-report-runs-'));

function metrics(dir: string, rec: (step: number) => Record<string, number>): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), Array.from({ length: 4 }, (_, i) => JSON.stringify({ step: i + 1, ...rec(i + 1) })).join('\n') + '\n');
}
const img = (v: number) => new Uint8Array(8 * 8).fill(v);

describe('run reports', () => {
  it("a tokenizer and a generator: no chart mixes their curves; each kind's charts are titled by it", () => {
    metrics(path.join(work, 'tok'), (s) => ({ loss: -0.2 / s, recon: 0.1 / s, lr: 1e-3, usage0: 0.5, usage1: 0.6 }));
    metrics(path.join(work, 'gen'), (s) => ({ loss: 5 / s, loss0: 5.5 / s, loss1: 4.5 / s, lr: 2e-3, acc0: 0.1 * s }));
    const runs = [readRun(path.join(work, 'tok')), readRun(path.join(work, 'gen'))];
    expect(runs.map((r) => r.kind)).toEqual(['tokenizer', 'generator']);
    const charts = runCharts(runs);
    for (const c of charts) {
      const owners = new Set(c.series.map((s) => s.name.split(' ')[0]));
      expect(owners.size, c.title).toBe(1);
      expect(c.title.startsWith(`${runs.find((r) => r.name === [...owners][0])!.kind}: `), c.title).toBe(true);
    }
    const titles = charts.map((c) => c.title);
    expect(titles).toContain('tokenizer: loss (total; per sub-codebook where numbered)');
    expect(titles).toContain('generator: loss (total; per sub-codebook where numbered)');
    const genLoss = charts.find((c) => c.title === 'generator: loss (total; per sub-codebook where numbered)')!;
    expect(genLoss.series.map((s) => s.name)).toEqual(['gen loss', 'gen loss0', 'gen loss1']);
    expect(genLoss.series[0]!.points).toEqual([[1, 5], [2, 2.5], [3, 5 / 3], [4, 1.25]]);
  });

  it('runs of one kind still overlay on one axis, as before', () => {
    metrics(path.join(work, 'tokB'), (s) => ({ loss: 0.3 / s, recon: 0.2 / s }));
    const charts = runCharts([readRun(path.join(work, 'tok')), readRun(path.join(work, 'tokB'))]);
    const loss = charts.find((c) => c.title.startsWith('loss'))!;
    expect(loss.series.map((s) => s.name)).toEqual(['tok loss', 'tokB loss']);
  });

  it("the run folder's samples and reconstructions are in the page as inline PNGs", async () => {
    const dir = path.join(work, 'gen');
    await writeGrid(path.join(dir, 'samples', 'grid.png'), [{ label: '0 a', images: [img(10), img(20)] }], 8, 8, 1);
    await writeGrid(path.join(dir, 'recon', 'recon.png'), [{ label: 'original', images: [img(30)] }, { label: 'recon', images: [img(40)] }], 8, 8, 1);
    await writeGrid(path.join(dir, 'probe', 'grid-k1.png'), [{ label: 'k1', images: [img(50)] }], 8, 8, 1);
    fs.mkdirSync(path.join(dir, 'samples', '0-a'), { recursive: true });
    await writeGrid(path.join(dir, 'samples', '0-a', '0000.png'), [{ label: '', images: [img(1)] }], 8, 8, 1);
    const run = readRun(dir);
    expect(run.grids.map((g) => g.name)).toEqual(['probe/grid-k1.png', 'recon/recon.png', 'samples/grid.png']);
    const html = runReportHtml([run]);
    expect(html).toContain('<h2>Images</h2>');
    for (const g of run.grids) {
      expect(html).toContain(`alt="gen ${g.name}"`);
      expect(html).toContain(`data:image/png;base64,${fs.readFileSync(g.file).toString('base64')}`);
    }
  });
});
