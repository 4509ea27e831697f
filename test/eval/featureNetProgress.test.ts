/**
 * The first `eval samples` / `eval recon` trains the feature network for minutes: it says so and shows progress;
 * a cached net loads silently (one line saying where from).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { featureNetFor } from '@factorgen/pipelines';
import { Progress } from '@factorgen/cli/ui/progress';
import { tinyDataset } from '../robustness/fixtures';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-featprogress-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const capture = () => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d) => (text += d));
  // The CLI's progress line (the pipeline draws none itself), on this stream.
  const progress = (total: number, label: string, o: { startStep?: number; unit?: string }) => new Progress(total, label, { ...o, stream });
  return { stream, progress, text: () => text };
};

describe('feature-net training progress', () => {
  it('prints a notice and progress lines while training, none when cached', async () => {
    await initBackend('cpu');
    const data = tinyDataset(12);
    const training = { steps: 4, batch: 4, lr: 1e-3, seed: 1, logEvery: 1 };
    const first = capture();
    const net = await featureNetFor(data, { cacheDir: root, training, stream: first.stream, progress: first.progress });
    net.store.dispose();
    const lines = first.text().trim().split('\n');
    expect(lines[0]).toBe('feature net: training on synthetic (first use; it is cached afterwards)');
    expect(lines.slice(1, -1).map((l) => l.split(' | ')[0])).toEqual(['feature net 1/4 25%', 'feature net 2/4 50%', 'feature net 3/4 75%', 'feature net 4/4 100%']);
    expect(lines.at(-1)).toMatch(/^feature net: trained in \d+ s, cached in /);
    const again = capture();
    const cached = await featureNetFor(data, { cacheDir: root, training, stream: again.stream, progress: again.progress });
    cached.store.dispose();
    expect(again.text()).toMatch(/^feature net: .* \(cached\)\n$/);
  }, 120_000);
});
