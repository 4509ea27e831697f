/**
 * The tokenizer's progress line (issue 25): reconstruction loss and code usage, current at every step (not the last log
 * point's figures repeated), with ETA; never the total loss, which the entropy term can make negative.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { readMetrics, readStepMetrics } from '@factorgen/train';
import { tokenizerProgressFields, trainTokenizer } from '@factorgen/pipelines';
import { withTrainingUi } from '@factorgen/cli/ui/training';
import { tinyDataset, tinyTokenizerConfig, tinyTokenizerTrain } from '../robustness/fixtures';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('tokenizer progress line', () => {
  it('tokenizerProgressFields keeps recon, per-sub-codebook code usage in % and lr', () => {
    expect(tokenizerProgressFields({ loss: -0.21, recon: 0.031, entropy: -0.3, usage0: 0.984375, usage1: 1, lr: 3e-4, gradNorm: 2 })).toEqual({
      recon: 0.031, 'codes0%': 98.4, 'codes1%': 100, lr: 3e-4,
    });
  });

  it('readStepMetrics reads the named device scalars on an unlogged step, in the one read of the NaN check', async () => {
    const out = { a: tf.scalar(2.5), b: tf.scalar(3), lr: 0.1 };
    const r = await readStepMetrics(out, false, ['a']);
    expect(r).toEqual({ metrics: { a: 2.5, lr: 0.1 }, bad: null });
    expect(out.a.isDisposed && out.b.isDisposed).toBe(true);
  });

  it('a training run shows each step its own recon and usage, equal to metrics.jsonl where logged', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-progress-'));
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      lines.push(String(s));
      return true;
    });
    try {
      // The training itself is headless; the line is the CLI's, drawn from the run's events.
      await withTrainingUi((ui) => trainTokenizer({
        ...ui,
        out, resume: false, config: tinyTokenizerConfig({ quantizer: { ...tinyTokenizerConfig().quantizer, entropyWeight: 0.1 } }), data: tinyDataset(),
        train: tinyTokenizerTrain({ steps: 6, logEvery: 3, usageWindow: 2 }),
      }));
    } finally {
      spy.mockRestore();
    }
    // Not a TTY here: one plain line per step (6 steps / 20 lines).
    const steps = lines.filter((l) => /^tokenizer \d\/6 /.test(l));
    expect(steps).toHaveLength(6);
    const parsed = steps.map((l) => {
      const m = /^tokenizer (\d)\/6 \d+% \| .+ \| (eta|took) \S+ \| recon (\S+) codes0% (\S+) codes1% (\S+) lr (\S+)\n$/.exec(l);
      expect(m, l).not.toBeNull();
      return { step: Number(m![1]), recon: Number(m![3]), codes0: Number(m![4]) };
    });
    // Current every step: six distinct reconstruction losses (the old line repeated the last log point's).
    expect(new Set(parsed.map((p) => p.recon)).size).toBe(6);
    expect(steps.join('')).not.toMatch(/\bloss -/);
    const logged = readMetrics(path.join(out, 'metrics.jsonl'));
    for (const rec of logged) {
      const p = parsed.find((q) => q.step === rec.step)!;
      expect(p.recon).toBeCloseTo(rec.recon as number, 3);
      expect(p.codes0).toBeCloseTo((rec.usage0 as number) * 100, 1);
    }
  });
});
