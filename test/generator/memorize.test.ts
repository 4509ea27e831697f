import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { adamwStep, variableGradsByName, defaultAdamW, disposeAdamState, initAdamState, warmupCosine, Rng } from '@factorgen/nn';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { createGenerator, generatorLoss, makeGeneratorConfig, sample } from '@factorgen/generator';

const N = 8; // sequences = classes
const steps = 60;

beforeAll(async () => {
  await initBackend('cpu');
});

describe.each(['ar', 'parallel'] as const)('memorization with the %s head', (headMode) => {
  it('a tiny model learns 8 class-conditional sequences and greedy sampling returns them', async () => {
    const cfg = makeGeneratorConfig({
      gridH: 2,
      gridW: 2,
      subCodebookSizes: [8, 6],
      numClasses: N,
      width: 32,
      depth: 2,
      heads: 2,
      mlpHidden: 64,
      headMode,
      headLayers: 1,
      headWidth: 32,
      headHeads: 2,
      headMlpHidden: 32,
      dropout: 0,
      classDropout: 0,
      rope: '2d',
    });
    const T = 4;
    const K = 2;
    const rng = new Rng('memorize-data');
    const data = Int32Array.from({ length: N * T * K }, (_, i) => rng.int(cfg.subCodebookSizes[i % K]));
    const labels = Int32Array.from({ length: N }, (_, i) => i);
    const gen = createGenerator(cfg, `memorize-${headMode}`);
    const opt = initAdamState();
    const tok = tf.tensor3d(data, [N, T, K], 'int32');
    try {
      const vars = gen.params.trainable();
      let last = Infinity;
      for (let s = 0; s < steps; s++) {
        const { value, grads } = variableGradsByName(() => generatorLoss(gen, tok, labels, { training: true }).loss, vars);
        adamwStep(gen.params.vars, grads, opt, defaultAdamW, warmupCosine(s, 2e-2, 5, steps));
        last = (await value.data())[0];
        tf.dispose([value, grads]);
      }
      expect(last).toBeLessThan(0.05);
      const greedy = await sample(gen, labels, { cfgScale: 1, temperature: 0, topK: 0, topP: 1, rng: new Rng('g'), useCache: true });
      expect(Array.from(greedy)).toEqual(Array.from(data));
      const top1 = await sample(gen, labels, { cfgScale: 1, temperature: 1, topK: 1, topP: 1, rng: new Rng('k'), useCache: false });
      expect(Array.from(top1)).toEqual(Array.from(data));
    } finally {
      tok.dispose();
      disposeAdamState(opt);
      gen.params.dispose();
    }
  });
});
