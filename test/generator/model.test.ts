import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { adamwStep, variableGradsByName, defaultAdamW, disposeAdamState, initAdamState, Rng } from '@factorgen/nn';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { UserError } from '@factorgen/tfjs-ext';
import {
  createGenerator,
  dropClassLabels,
  generatorLoss,
  makeGeneratorConfig,
  smallGenerator7x7,
  validateGeneratorConfig,
  type Generator,
  type GeneratorConfig,
} from '@factorgen/generator';
import { backboneForward, backboneTeacherForced, embedClass, embedTokens } from '@factorgen/generator';
import { headForward, headSlots, headTeacherForced } from '@factorgen/generator';

const tiny = (over: Partial<GeneratorConfig> = {}): GeneratorConfig =>
  makeGeneratorConfig({
    gridH: 2,
    gridW: 3,
    subCodebookSizes: [4, 6],
    numClasses: 3,
    width: 16,
    depth: 2,
    heads: 2,
    mlpHidden: 24,
    headMode: 'ar',
    headLayers: 1,
    headWidth: 16,
    headHeads: 2,
    headMlpHidden: 16,
    dropout: 0.2,
    classDropout: 0.5,
    rope: '2d',
    ...over,
  });

function withGen<R>(gen: Generator, f: (gen: Generator) => R): R {
  try {
    return f(gen);
  } finally {
    gen.params.dispose();
  }
}

const B = 3;
const T = 6;
const tokenData = Int32Array.from({ length: B * T * 2 }, (_, i) => (i % 2 === 0 ? (i * 7) % 4 : (i * 5) % 6));
const labels = Int32Array.from([0, 1, 2]);

/** Runs f with the tokens as an int32 tensor [B, T, 2], reads scalars back and disposes everything. */
function lossNumbers(gen: Generator, opts: Parameters<typeof generatorLoss>[3], labelsIn: Int32Array = labels) {
  const tok = tf.tensor3d(tokenData, [B, T, 2], 'int32');
  const out = generatorLoss(gen, tok, labelsIn, opts);
  const read = (s: tf.Scalar) => s.dataSync()[0];
  const r = { loss: read(out.loss), sub: out.subLosses.map(read), acc: out.subAccuracy.map(read) };
  tf.dispose([tok, out.loss, ...out.subLosses, ...out.subAccuracy]);
  return r;
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe('config', () => {
  it('the 7x7 preset is valid and has a few million parameters', () => {
    validateGeneratorConfig(smallGenerator7x7);
    withGen(createGenerator(smallGenerator7x7, 1), (gen) => {
      const n = gen.params.count();
      expect(n).toBeGreaterThan(5e6);
      expect(n).toBeLessThan(11e6); // 10.5 M since its head has 3 blocks (was 2: 9.6 M)
    });
  });
  it('rejects invalid fields with one-line UserErrors', () => {
    expect(() => makeGeneratorConfig({ heads: 3 })).toThrow(UserError);
    expect(() => makeGeneratorConfig({ heads: 3 })).toThrow('generator config: heads (3) must divide width (256)');
    const w72 = { width: 72, heads: 4, headWidth: 72, headHeads: 4 };
    expect(() => makeGeneratorConfig(w72)).toThrow(/2-D RoPE needs width\/heads divisible by 4 \(got 18\)/);
    expect(() => makeGeneratorConfig({ ...w72, rope: '1d' })).not.toThrow();
    expect(() => makeGeneratorConfig({ headLayers: 5 })).toThrow(/headLayers must be an integer in 1..4/);
    expect(() => makeGeneratorConfig({ subCodebookSizes: [] })).toThrow(/at least one sub-codebook/);
    expect(() => makeGeneratorConfig({ subCodebookSizes: [16, 1] })).toThrow(/integer >= 2 \(got 1\)/);
    expect(() => makeGeneratorConfig({ headWidth: 512 })).toThrow(/headWidth \(512\) must not exceed width/);
    expect(() => makeGeneratorConfig({ classDropout: 1 })).toThrow(/classDropout must be in \[0, 1\)/);
    expect(() => makeGeneratorConfig({ headMode: 'x' as 'ar' })).toThrow(/headMode/);
  });
});

describe('generatorLoss', () => {
  it('an untrained model predicts uniform distributions: loss = mean_k log V_k, accuracy = share of target 0', () => {
    withGen(createGenerator(tiny(), 's'), (gen) => {
      const r = lossNumbers(gen, { training: false });
      expect(r.sub[0]).toBeCloseTo(Math.log(4), 5);
      expect(r.sub[1]).toBeCloseTo(Math.log(6), 5);
      expect(r.loss).toBeCloseTo((Math.log(4) + Math.log(6)) / 2, 5);
      // all-equal logits: argmax is index 0
      for (let k = 0; k < 2; k++) {
        let zeros = 0;
        for (let i = k; i < tokenData.length; i += 2) zeros += tokenData[i] === 0 ? 1 : 0;
        expect(r.acc[k]).toBeCloseTo(zeros / (B * T), 6);
      }
    });
  });

  it.each(['ar', 'parallel'] as const)('equals a hand computation when the logits are the output biases (%s head)', (headMode) => {
    withGen(createGenerator(tiny({ headMode }), 's'), (gen) => {
      // zero output weights: logits = bias at every position, whatever the backbone computes
      const biases = [
        [0.5, -1, 2, 0],
        [1, 0, -0.5, 3, 0.25, -2],
      ];
      biases.forEach((b, k) => gen.params.get(`head/out${k}/b`).assign(tf.tensor1d(b)));
      const r = lossNumbers(gen, { training: false });
      let total = 0;
      biases.forEach((b, k) => {
        const lse = Math.log(b.reduce((s, v) => s + Math.exp(v), 0));
        const argmax = b.indexOf(Math.max(...b));
        let ce = 0;
        let hits = 0;
        for (let i = k; i < tokenData.length; i += 2) {
          ce += lse - b[tokenData[i]];
          hits += tokenData[i] === argmax ? 1 : 0;
        }
        expect(r.sub[k]).toBeCloseTo(ce / (B * T), 5);
        expect(r.acc[k]).toBeCloseTo(hits / (B * T), 6);
        total += ce / (B * T);
      });
      expect(r.loss).toBeCloseTo(total / 2, 5);
    });
  });

  it('checks shapes and labels', () => {
    withGen(createGenerator(tiny(), 's'), (gen) => {
      const bad = tf.zeros([B, T + 1, 2], 'int32') as tf.Tensor3D;
      expect(() => generatorLoss(gen, bad, labels, { training: false })).toThrow(/tokens must be int32 \[B, 6, 2\]/);
      bad.dispose();
      expect(() => lossNumbers(gen, { training: false }, Int32Array.from([0, 1]))).toThrow(/2 labels for a batch of 3/);
      expect(() => lossNumbers(gen, { training: false }, Int32Array.from([0, 1, 4]))).toThrow(/label 4 outside \[0, 3\]/);
      expect(() => lossNumbers(gen, { training: true })).toThrow(/needs opts.rng/);
    });
  });

  it('training mode is reproducible from the Rng and differs from evaluation; evaluation draws nothing', () => {
    withGen(createGenerator(tiny(), 's'), (gen) => {
      // make the logits depend on everything
      const rng = new Rng('perturb');
      for (const v of gen.params.vars.values()) {
        tf.tidy(() => v.assign(tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal() * 0.3), v.shape))));
      }
      const evalA = lossNumbers(gen, { training: false });
      const r = new Rng('eval');
      const before = JSON.stringify(r.state());
      const evalB = lossNumbers(gen, { training: false, rng: r });
      expect(JSON.stringify(r.state())).toBe(before);
      expect(evalB.loss).toBe(evalA.loss);
      const trainA = lossNumbers(gen, { training: true, rng: new Rng('step1') });
      const trainB = lossNumbers(gen, { training: true, rng: new Rng('step1') });
      const trainC = lossNumbers(gen, { training: true, rng: new Rng('step2') });
      expect(trainB.loss).toBe(trainA.loss);
      expect(trainA.loss).not.toBe(evalA.loss);
      expect(trainC.loss).not.toBe(trainA.loss);
    });
  });
});

describe('dropClassLabels', () => {
  it('replaces labels by the null class with the given probability, reproducibly', () => {
    const labelsIn = Int32Array.from({ length: 10000 }, (_, i) => i % 7);
    const a = dropClassLabels(labelsIn, 7, 0.1, new Rng('d'));
    const b = dropClassLabels(labelsIn, 7, 0.1, new Rng('d'));
    expect(Array.from(a)).toEqual(Array.from(b));
    let dropped = 0;
    a.forEach((l, i) => {
      if (l === 7) dropped++;
      else expect(l).toBe(labelsIn[i]);
    });
    expect(dropped / a.length).toBeGreaterThan(0.09);
    expect(dropped / a.length).toBeLessThan(0.11);
    expect(Array.from(dropClassLabels(labelsIn.subarray(0, 5), 7, 0, new Rng('d')))).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('training loop', () => {
  it('leaks no tensors over training steps and lowers the loss', () => {
    withGen(createGenerator(tiny(), 'train'), (gen) => {
      const tok = tf.tensor3d(tokenData, [B, T, 2], 'int32');
      const opt = initAdamState();
      const vars = gen.params.trainable();
      const losses: number[] = [];
      let afterFirst = 0;
      for (let s = 0; s < 8; s++) {
        const { value, grads } = variableGradsByName(
          () => generatorLoss(gen, tok, labels, { training: true, rng: new Rng(`step${s}`) }).loss,
          vars,
        );
        // every parameter is on the loss path (behind the zero-initialized output layers its step-0 gradient is 0)
        expect(Object.keys(grads).length).toBe(vars.size);
        adamwStep(gen.params.vars, grads, opt, defaultAdamW, 3e-3);
        losses.push(value.dataSync()[0]);
        tf.dispose([value, grads]);
        if (s === 0) afterFirst = tf.memory().numTensors;
      }
      expect(tf.memory().numTensors).toBe(afterFirst);
      expect(losses[7]).toBeLessThan(losses[0]);
      disposeAdamState(opt);
      tf.dispose([tok]);
    });
  });
});

describe('recomputed blocks (gradient checkpointing)', () => {
  it.each(['none', 'keepProducts', 'all'] as const)(
    'recompute %s: the training backbone and head give the values and gradients of the cached-path blocks, bit for bit, with dropout',
    (mode) => {
      withGen(createGenerator(tiny({ dropout: 0.3, classDropout: 0 }), 5), (gen) => {
        const tokens = tf.tensor3d(tokenData, [B, T, 2], 'int32');
        const labT = tf.tensor1d(labels, 'int32');
        const drop = () => ({ rate: 0.3, rng: new Rng('ckpt') });
        const plain = () => {
          const x = tf.concat([embedClass(gen, labT), embedTokens(gen, tf.slice(tokens, [0, 0, 0], [B, T - 1, -1]))], 1) as tf.Tensor3D;
          const d = drop();
          const h = backboneForward(gen, x, 0, null, d).h;
          const sub = tf.slice(tf.reshape(tokens, [B * T, 2]), [0, 0], [-1, 1]) as tf.Tensor2D;
          const logits = headForward(gen, headSlots(gen, 0, tf.reshape(h, [B * T, 16]) as tf.Tensor2D, sub), 0, null, d).logits;
          return tf.addN(logits.map((l) => tf.sum(tf.square(l)))).add(tf.sum(tf.square(h))) as tf.Scalar;
        };
        const training = () => {
          const d = drop();
          const h = backboneTeacherForced(gen, tokens, labT, d, mode);
          const logits = headTeacherForced(gen, tf.reshape(h, [B * T, 16]) as tf.Tensor2D, tf.reshape(tokens, [B * T, 2]) as tf.Tensor2D, d, mode);
          return tf.addN(logits.map((l) => tf.sum(tf.square(l)))).add(tf.sum(tf.square(h))) as tf.Scalar;
        };
        const read = (f: () => tf.Scalar) => {
          const { value, grads } = variableGradsByName(f, gen.params.vars);
          const out = { value: value.dataSync()[0], grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync().slice()])) };
          tf.dispose([value, ...Object.values(grads)]);
          return out;
        };
        // Output layers start at zero, so give them values for the head's gradients to be non-trivial.
        for (const [name, v] of gen.params.vars) if (name.includes('/out') && name.startsWith('head/')) v.assign(tf.fill(v.shape, 0.05));
        const a = read(plain);
        const before = tf.memory().numTensors;
        const b = read(training);
        expect(tf.memory().numTensors).toBe(before);
        expect(b.value).toBe(a.value);
        expect(Object.keys(b.grads).sort()).toEqual(Object.keys(a.grads).sort());
        for (const k of Object.keys(a.grads)) expect(b.grads[k], k).toEqual(a.grads[k]);
        expect(Math.max(...Object.values(a.grads).map((g) => Math.max(...g.map(Math.abs))))).toBeGreaterThan(0);
        tf.dispose([tokens, labT]);
      });
    },
  );
});
