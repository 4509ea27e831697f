import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { backboneTeacherForced, createGenerator, currentGeneratorConfig, makeGeneratorConfig, validateGeneratorConfig, type StoredGeneratorConfig } from '@factorgen/generator';
import { backboneRope } from '@factorgen/nn';

beforeAll(async () => {
  await initBackend('cpu');
});

describe("the class token's rotary embedding", () => {
  it("'zero' gives the class row cos = sin = 0 (LlamaGen's cls rows), 'identity' cos 1, sin 0; token rows are the same, by hand", () => {
    const zero = backboneRope('2d', 3, 3, 8, 10000, 'zero');
    const id = backboneRope('2d', 3, 3, 8);
    expect(Array.from(zero.cos.slice(0, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(zero.sin.slice(0, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(id.cos.slice(0, 8))).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(id.sin.slice(0, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(zero.cos.slice(8))).toEqual(Array.from(id.cos.slice(8)));
    expect(Array.from(zero.sin.slice(8))).toEqual(Array.from(id.sin.slice(8)));
    // position 2 holds x_1 at row 0, column 1: pairs 0, 1 turn by the row (0), pairs 2, 3 by the column at 1 and 10000^(-1/2)
    const c = [1, 1, Math.cos(1), Math.cos(0.01)];
    const s = [0, 0, Math.sin(1), Math.sin(0.01)];
    Array.from(zero.cos.slice(16, 24)).forEach((v, i) => expect(v).toBeCloseTo(c[i % 4], 6));
    Array.from(zero.sin.slice(16, 24)).forEach((v, i) => expect(v).toBeCloseTo(s[i % 4], 6));
  });

  it("configs without classRope (all written before it) keep the identity; 'identity' computes bit for bit what no field does; 'zero' changes the later positions only", () => {
    const base = makeGeneratorConfig({ gridH: 3, gridW: 3, subCodebookSizes: [8, 8], width: 16, depth: 2, heads: 2, mlpHidden: 32, headWidth: 16, headHeads: 2, headMlpHidden: 32, dropout: 0 });
    const { classRope: _omit, version: _v, ...old } = base; // as a config.json from before the field (version 1)
    expect(currentGeneratorConfig(old).classRope).toBe('identity');
    expect(() => validateGeneratorConfig({ ...old, classRope: 'none' as 'zero' })).toThrow("classRope must be 'identity' or 'zero' (got none)");
    const tokens = tf.tensor3d(Array.from({ length: 2 * 9 * 2 }, (_, i) => (i * 5) % 8), [2, 9, 2], 'int32');
    const labels = tf.tensor1d([3, 7], 'int32');
    const hidden = (cfg: StoredGeneratorConfig) => {
      const gen = createGenerator(cfg, 'rope');
      const h = tf.tidy(() => Array.from(backboneTeacherForced(gen, tokens, labels, null).dataSync()));
      gen.params.dispose();
      return h;
    };
    const [hOld, hId, hZero] = [hidden(old), hidden({ ...old, classRope: 'identity' }), hidden({ ...old, classRope: 'zero' })];
    expect(hId).toEqual(hOld);
    // [B=2, T=9, 16]: position 0 sees only itself (one key: its score does not matter); positions 1..8 see the class key
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 9; t++) {
        const at = (b * 9 + t) * 16;
        const same = hZero.slice(at, at + 16).every((v, i) => Math.abs(v - hOld[at + i]) < 1e-6);
        expect(same, `image ${b}, position ${t}`).toBe(t === 0);
      }
    }
    tf.dispose([tokens, labels]);
  });
});
