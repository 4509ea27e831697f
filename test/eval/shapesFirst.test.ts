import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { type ImageDataset } from '@factorgen/formats';
import { evalSamples } from '@factorgen/pipelines';
import { type FeatureNet } from '@factorgen/eval';

const root = path.resolve(__dirname, '../..');

const dataset = (name: string, n: number): ImageDataset => ({
  name, images: new Uint8Array(n * 8 * 8), n, height: 8, width: 8, channels: 1, labels: new Int32Array(n), classNames: ['a', 'b'],
});

describe('eval checks its inputs before any work', () => {
  it('eval recon with a tokenizer of another image shape is one line, before reconstruction or the feature net (was: a stack trace, with emoji after 7 min)', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'eval', 'recon', '--tokenizer', 'pretrained/tokenizer', '--dataset', 'emoji', '--limit', '10'], {
      cwd: root, encoding: 'utf8', timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n').at(-1)).toBe('factorgen: --dataset emoji: images are 32x32x3, the tokenizer pretrained/tokenizer expects 28x28x1');
    expect(Date.now() - t0).toBeLessThan(60_000);
  }, 120_000);

  it('eval samples on a small dataset whose test split has no more than k images is one line (was: a stack trace in kthNeighbourSqRadii)', async () => {
    // The refusal comes before the feature net is used, so none is needed here.
    const noNet = {} as FeatureNet;
    await expect(evalSamples(dataset('samples', 12), dataset('folder:small/test', 3), noNet)).rejects.toThrow(
      new UserError("folder:small/test: the test split has 3 images; precision/recall need more than k=3 (a folder dataset's test split is every 10th image of each class)"),
    );
  });
});
