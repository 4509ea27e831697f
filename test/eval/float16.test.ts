import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ParamStore, Rng } from '@factorgen/nn';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { createFeatureNet, fromHalf, toHalf } from '@factorgen/eval';
import { isCompactFeatureNet, loadFeatureNetCompact, saveFeatureNetCompact } from '@factorgen/pipelines';
import type { FeatureNetConfig } from '@factorgen/eval';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('float16', () => {
  it('encodes known values bit-exactly (IEEE 754 binary16, ties to even)', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(65520)).toBe(0x7c00); // rounds up past the largest finite value
    expect(toHalf(0.1)).toBe(0x2e66);
    expect(toHalf(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalf(2 ** -26)).toBe(0x0000);
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(toHalf(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(fromHalf(toHalf(NaN)))).toBe(true);
    for (const h of [0x3c00, 0xc000, 0x7bff, 0x2e66, 0x0001, 0x03ff, 0x0400]) expect(toHalf(fromHalf(h))).toBe(h);
    expect(fromHalf(0x2e66)).toBeCloseTo(0.1, 4);
  });

  it('a compact feature net loads back with every weight rounded to float16, and bad files fail with one line', async () => {
    const cfg: FeatureNetConfig = { height: 8, width: 8, channels: 1, classes: 3, widths: [4, 8], blocks: [0], featureDim: 6, groups: 2, reduce: 2, fidTaps: [{ tap: 0, scale: 2 }] };
    const store = new ParamStore(new Rng('half'));
    createFeatureNet(store, cfg);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-half-'));
    const before = tf.memory().numTensors;
    await saveFeatureNetCompact({ cfg, store }, dir, { note: 'x' });
    expect(isCompactFeatureNet(dir)).toBe(true);
    const back = loadFeatureNetCompact(dir);
    expect(back.cfg).toEqual(cfg);
    expect(back.extra).toEqual({ note: 'x' });
    for (const [name, v] of store.vars) {
      const want = Array.from(v.dataSync(), (x) => fromHalf(toHalf(x)));
      expect(Array.from(back.store.get(name).dataSync()), name).toEqual(want.map((x) => Math.fround(x)));
    }
    back.store.dispose();
    expect(tf.memory().numTensors).toBe(before);
    fs.truncateSync(path.join(dir, 'weights.f16.bin'), 10);
    expect(() => loadFeatureNetCompact(dir)).toThrow(`${path.join(dir, 'weights.f16.bin')}: 10 bytes, the index needs`);
    expect(tf.memory().numTensors).toBe(before);
    store.dispose();
  });
});
