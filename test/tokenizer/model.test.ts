import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { ParamStore } from '@factorgen/nn';
import { Rng } from '@factorgen/nn';
import { quantizerDefaults, type Factorization, type TokenizerConfig } from '@factorgen/tokenizer';
import { decode } from '@factorgen/tokenizer';
import { disentangleLoss } from '@factorgen/tokenizer';
import { encodeBranch, encodeTrunk } from '@factorgen/tokenizer';
import { vqQuantizer } from '@factorgen/tokenizer';
import { alignTargetPredict, fqganInfoNCE } from '@factorgen/tokenizer';
import { restartDeadCodes } from '@factorgen/tokenizer';
import { createTokenizer, decodeTokens, encodeTokens, tokenizerForward, type Tokenizer } from '@factorgen/tokenizer';
import { lookupCodes } from '@factorgen/tokenizer';
import { createTeacher, freezeParams, teacherFromStore, type TeacherConfig } from '@factorgen/tokenizer';
import { CodeHistogram } from '@factorgen/tokenizer';
import { Ema } from '@factorgen/nn';

beforeAll(async () => {
  await initBackend('cpu');
});

/** 8x8 gray images, 4x4 grid, two sub-codebooks of 8 codes: every code path, tiny compute. */
function tinyConfig(kind: 'vq' | 'fq', K = 2, entropyWeight = 0, factorize: Factorization = 'projection'): TokenizerConfig {
  return {
    version: 2, branchBlocks: 1, alignTargets: [],
    imageSize: 8, channels: 1, baseChannels: 4, channelMult: [1, 2], blocksPerLevel: 1, attention: true, normGroups: 2,
    latentChannels: 6,
    quantizer: { ...quantizerDefaults(kind, Array.from({ length: K }, () => ({ size: 8, dim: 4 }))), entropyWeight },
    perceptualWeight: 0,
    factorize,
  };
}

function images(B: number, seed = 'img'): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(Array.from({ length: B * 64 }, () => rng.next() * 2 - 1), [B, 8, 8, 1]);
}

/** tf.variableGrads keys gradients by tfjs variable name; re-key them by parameter name. */
function byParam(tok: Tokenizer, grads: tf.NamedTensorMap): Record<string, tf.Tensor> {
  const names = new Map([...tok.params.vars].map(([n, v]) => [v.name, n]));
  return Object.fromEntries(Object.entries(grads).map(([k, g]) => [names.get(k) ?? k, g]));
}

/** Runs f on a fresh tokenizer and disposes its parameters afterwards (tfjs variable names are global). */
function withTokenizer<T>(cfg: TokenizerConfig, seed: string, f: (tok: Tokenizer) => T): T {
  const tok = createTokenizer(cfg, seed);
  let r: T;
  try {
    r = f(tok);
  } catch (e) {
    tok.params.dispose();
    throw e;
  }
  // An async f: dispose once it has settled.
  if (r instanceof Promise) return r.finally(() => tok.params.dispose()) as T;
  tok.params.dispose();
  return r;
}

describe('tokenizer forward', () => {
  it('has the documented shapes and dtypes, and leaks no tensors', () => {
    const x = images(2);
    withTokenizer(tinyConfig('fq'), 's', (tok) => {
      const before = tf.memory().numTensors;
      const shapes = tf.tidy(() => {
        const out = tokenizerForward(tok, x);
        return {
          recon: out.recon.shape, quantized: out.quantized.shape, indices: out.indices.shape, dtype: out.indices.dtype,
          sub: out.subCodes.map((t) => t.shape), qsub: out.quantizedSub.map((t) => t.shape),
          losses: Object.keys(out.losses).sort(), total: out.total.dataSync()[0],
          sum: Object.values(out.losses).reduce((s, l) => s + l.dataSync()[0], 0),
        };
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(shapes.recon).toEqual([2, 8, 8, 1]);
      expect(shapes.quantized).toEqual([2, 4, 4, 6]);
      expect(shapes.indices).toEqual([2, 4, 4, 2]);
      expect(shapes.dtype).toBe('int32');
      expect(shapes.sub).toEqual([[2, 4, 4, 4], [2, 4, 4, 4]]);
      expect(shapes.qsub).toEqual([[2, 4, 4, 4], [2, 4, 4, 4]]);
      expect(shapes.losses).toEqual(['align', 'codebook', 'commitment', 'disentangle', 'entropy', 'perceptual', 'recon']);
      expect(shapes.total).toBeCloseTo(shapes.sum, 5);
    });
    x.dispose();
  });

  it('rejects images of the wrong size', () => {
    const x = tf.zeros([1, 6, 6, 1]) as tf.Tensor4D;
    withTokenizer(tinyConfig('fq'), 's', (tok) => {
      expect(() => tokenizerForward(tok, x)).toThrow('tokenizerForward: images must be [B,8,8,1] (got [1,6,6,1])');
    });
    x.dispose();
  });

  it('straight-through: the reconstruction loss alone gives nonzero gradients to every encoder parameter, none to codebooks', () => {
    const x = images(2);
    withTokenizer(tinyConfig('fq'), 's', (tok) => {
      const enc = tok.params.under('encoder');
      const cbs = tok.params.under('quant').filter((n) => n.endsWith('codebook'));
      const vars = [...enc, ...cbs].map((n) => tok.params.get(n));
      const { value, grads: raw } = tf.variableGrads(() => tf.tidy(() => tokenizerForward(tok, x).losses.recon), vars);
      const grads = byParam(tok, raw);
      for (const n of enc) {
        expect(grads[n], n).toBeDefined();
        expect(tf.tidy(() => tf.max(tf.abs(grads[n])).dataSync()[0]), n).toBeGreaterThan(0);
      }
      for (const n of cbs) expect(grads[n] === undefined || grads[n].dataSync().every((g) => g === 0), n).toBe(true);
      tf.dispose([value, ...Object.values(grads)]);
    });
    x.dispose();
  });

  it.each(['projection', 'branch'] as const)('fq with K=1 equals vq bit for bit (outputs, indices, losses and gradients) from the same seed (%s)', (factorize) => {
    const x = images(3, 'eq');
    const run = (kind: 'vq' | 'fq') =>
      withTokenizer(tinyConfig(kind, 1, 0.05, factorize), 'same-seed', (tok) => {
        const names = [...tok.params.trainable().keys()];
        let arrays: Record<string, tf.TypedArray> = {};
        const { value, grads: raw } = tf.variableGrads(() => {
          const out = tokenizerForward(tok, x);
          arrays = {
            recon: out.recon.dataSync().slice(), quantized: out.quantized.dataSync().slice(), indices: out.indices.dataSync().slice(),
            sub: out.subCodes[0].dataSync().slice(), qsub: out.quantizedSub[0].dataSync().slice(),
            ...Object.fromEntries(Object.entries(out.losses).map(([k, l]) => [`loss.${k}`, l.dataSync().slice()])),
          };
          return out.total;
        }, [...tok.params.trainable().values()]);
        const grads = byParam(tok, raw);
        for (const n of names) arrays[`grad.${n}`] = grads[n].dataSync().slice();
        tf.dispose([value, ...Object.values(grads)]);
        return { names, arrays };
      });
    const vq = run('vq');
    const fq = run('fq');
    expect(fq.names).toEqual(vq.names);
    expect(Object.keys(fq.arrays).sort()).toEqual(Object.keys(vq.arrays).sort());
    expect(vq.arrays['loss.entropy'][0]).not.toBe(0);
    for (const k of Object.keys(vq.arrays)) expect(fq.arrays[k], k).toEqual(vq.arrays[k]);
    x.dispose();
  });

  it('branch with K=1 is a plain VQ of the same trunk: trunk -> its branch -> one cosine VQ -> decoder, bit for bit', () => {
    const x = images(3, 'branch1');
    withTokenizer(tinyConfig('fq', 1, 0.05, 'branch'), 'b1', (tok) => {
      const names = [...tok.params.vars.keys()];
      expect(names.filter((n) => n.startsWith('encoder/branch0/'))).toEqual([
        ...['res0/norm1/gamma', 'res0/norm1/beta', 'res0/conv1/w', 'res0/conv1/b', 'res0/norm2/gamma', 'res0/norm2/beta', 'res0/conv2/w', 'res0/conv2/b'],
        ...['attn0/norm/gamma', 'attn0/norm/beta', 'attn0/q/w', 'attn0/q/b', 'attn0/k/w', 'attn0/k/b', 'attn0/v/w', 'attn0/v/b', 'attn0/out/w', 'attn0/out/b'],
        ...['norm_out/gamma', 'norm_out/beta', 'conv_out/w', 'conv_out/b'],
      ].map((n) => `encoder/branch0/${n}`));
      expect(names).not.toContain('encoder/conv_out/w');
      const [model, plain] = tf.tidy(() => {
        const out = tokenizerForward(tok, x);
        const q = vqQuantizer.quantize(tok.params, tok.cfg, [encodeBranch(tok.params, tok.cfg, encodeTrunk(tok.params, tok.cfg, x), 0)]);
        const recon = decode(tok.params, tok.cfg, q.quantized);
        const d = tf.sub(recon, x);
        const total = tf.addN([tf.mean(tf.mul(d, d)), q.losses.codebook, q.losses.commitment, q.losses.entropy]);
        return [
          [out.recon, out.indices, out.total].map((t) => Array.from(t.dataSync())),
          [recon, q.indices, total].map((t) => Array.from(t.dataSync())),
        ];
      });
      expect(model).toEqual(plain);
    });
    x.dispose();
  });

  it('branch with K=2: each sub-codebook has its own branch; one sub-codebook\'s loss reaches its branch and the trunk only', () => {
    const x = images(2, 'branch2');
    withTokenizer(tinyConfig('fq', 2, 0, 'branch'), 'b2', (tok) => {
      const trainable = tok.params.trainable();
      const { value, grads: raw } = tf.variableGrads(() => {
        const out = tokenizerForward(tok, x);
        return tf.sum(tf.square(out.quantizedSub[0])).add(out.losses.commitment) as tf.Scalar;
      }, [...trainable.values()]);
      const grads = byParam(tok, raw);
      const nonzero = (n: string) => grads[n] !== undefined && grads[n].dataSync().some((g) => g !== 0);
      expect(nonzero('encoder/branch0/conv_out/w')).toBe(true);
      expect(nonzero('encoder/conv_in/w')).toBe(true);
      // the commitment term of sub-codebook 1 reaches branch 1; the code of sub-codebook 0 alone does not
      expect(nonzero('encoder/branch1/conv_out/w')).toBe(true);
      tf.dispose([value, ...Object.values(grads)]);
      const { value: v2, grads: raw2 } = tf.variableGrads(() => tf.sum(tf.square(tokenizerForward(tok, x).quantizedSub[0])) as tf.Scalar, [...trainable.values()]);
      const g2 = byParam(tok, raw2);
      expect(g2['encoder/branch1/conv_out/w'] === undefined || g2['encoder/branch1/conv_out/w'].dataSync().every((g) => g === 0)).toBe(true);
      expect(g2['encoder/branch0/conv_out/w'].dataSync().some((g) => g !== 0)).toBe(true);
      tf.dispose([v2, ...Object.values(g2)]);
    });
    x.dispose();
  });

  it('disentanglement compares the straight-through quantized codes (FQGAN) by default, the pre-quantization codes with "pre"', () => {
    const x = images(2, 'dis');
    const cfg = { ...tinyConfig('fq', 2, 0, 'branch') };
    withTokenizer(cfg, 'd', (tok) => {
      const got = tf.tidy(() => {
        const out = tokenizerForward(tok, x);
        return [out.losses.disentangle, disentangleLoss(out.quantizedSub, 0.1), disentangleLoss(out.subCodes, 0.1)].map((t) => t.dataSync()[0]);
      });
      expect(cfg.quantizer.disentangleOn).toBe('quantized');
      expect(got[0]).toBe(got[1]);
      expect(got[0]).not.toBe(got[2]);
    });
    withTokenizer({ ...cfg, quantizer: { ...cfg.quantizer, disentangleOn: 'pre' } }, 'd', (tok) => {
      const got = tf.tidy(() => {
        const out = tokenizerForward(tok, x);
        return [out.losses.disentangle, disentangleLoss(out.subCodes, 0.1)].map((t) => t.dataSync()[0]);
      });
      expect(got[0]).toBe(got[1]);
    });
    x.dispose();
  });

  it('decoding the tokens reproduces the forward pass exactly; encode/decode leak nothing', () => {
    const x = images(2, 'roundtrip');
    withTokenizer(tinyConfig('fq'), 's', (tok) => {
      const before = tf.memory().numTensors;
      const [quantized, recon] = tf.tidy(() => {
        const out = tokenizerForward(tok, x);
        return [out.quantized.dataSync().slice(), tf.clipByValue(out.recon, -1, 1).dataSync().slice()];
      });
      const tokens = encodeTokens(tok, x);
      expect(tf.memory().numTensors).toBe(before + 1);
      const looked = tf.tidy(() => lookupCodes(tok.params, tok.cfg, tokens).dataSync().slice());
      const decoded = decodeTokens(tok, tokens);
      expect(tf.memory().numTensors).toBe(before + 2);
      expect(looked).toEqual(quantized);
      expect(decoded.dataSync()).toEqual(recon);
      tf.dispose([tokens, decoded]);
      expect(tf.memory().numTensors).toBe(before);
      expect(() => tf.tidy(() => lookupCodes(tok.params, tok.cfg, tf.zeros([1, 4, 4, 3], 'int32') as tf.Tensor4D))).toThrow(
        'lookupCodes: indices must be [B,h,w,2] (got [1,4,4,3])',
      );
    });
    x.dispose();
  });

  it.each(['fq', 'vq'] as const)('encodeTokens gives the forward pass indices with the entropy loss on (%s; encode skips that loss)', (kind) => {
    const x = images(3, 'encode-entropy');
    withTokenizer(tinyConfig(kind, kind === 'fq' ? 2 : 1, 0.1), 's', (tok) => {
      const want = tf.tidy(() => {
        const out = tokenizerForward(tok, x);
        expect(out.losses.entropy.dataSync()[0]).not.toBe(0);
        return out.indices.dataSync().slice();
      });
      const tokens = encodeTokens(tok, x);
      expect(tokens.dataSync()).toEqual(want);
      expect(tok.cfg.quantizer.entropyWeight).toBe(0.1);
      tokens.dispose();
    });
    x.dispose();
  });

  it('same seed gives the same parameters, another seed different ones', () => {
    const first = (seed: string) => withTokenizer(tinyConfig('fq'), seed, (tok) => tok.params.get('quant/k1/codebook').dataSync().slice());
    expect(first('a')).toEqual(first('a'));
    expect(first('a')).not.toEqual(first('b'));
  });
});

describe('teacher losses', () => {
  it('perceptual and alignment terms come from the frozen teacher; gradients reach encoder and align head, not the teacher', () => {
    const tcfg: TeacherConfig = { imageSize: 8, channels: 1, widths: [4, 8], embedDim: 6, classes: 3, normGroups: 2 };
    const tstore = new ParamStore(new Rng('t'));
    createTeacher(tstore, tcfg);
    freezeParams(tstore);
    const teacher = teacherFromStore(tstore, tcfg);
    const cfg: TokenizerConfig = { ...tinyConfig('fq'), perceptualWeight: 0.5, align: { subCodebook: 1, teacherDim: 6, weight: 0.2, temperature: 0.1 } };
    const x = images(3, 'teach');
    withTokenizer(cfg, 's', (tok) => {
      expect(tok.params.has('align/fc1/w')).toBe(true);
      const names = new Map([...tok.params.vars].map(([n, v]) => [v.name, n]));
      let terms: Record<string, number> = {};
      const before = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(() => {
        const out = tokenizerForward(tok, x, { teacher });
        terms = Object.fromEntries(Object.entries(out.losses).map(([k, l]) => [k, l.dataSync()[0]]));
        return out.total;
      });
      // no varList: every trainable variable in the process is in play, yet none of the teacher's get a gradient
      const got = new Set(Object.keys(grads).map((k) => names.get(k) ?? `unknown:${k}`));
      expect([...got].filter((n) => n.startsWith('unknown'))).toEqual([]);
      expect(got.has('align/fc1/w')).toBe(true);
      expect(got.has('encoder/conv_in/w')).toBe(true);
      expect(terms.perceptual).toBeGreaterThan(0);
      expect(terms.align).toBeGreaterThan(0);
      // the align gradient alone reaches the encoder through the straight-through codes
      const alignOnly = tf.variableGrads(() => tokenizerForward(tok, x, { teacher }).losses.align, [tok.params.get('encoder/conv_in/w')]);
      expect(tf.tidy(() => tf.max(tf.abs(Object.values(alignOnly.grads)[0])).dataSync()[0])).toBeGreaterThan(0);
      tf.dispose([value, ...Object.values(grads), alignOnly.value, ...Object.values(alignOnly.grads)]);
      expect(tf.memory().numTensors).toBe(before);
      // without a teacher both terms are 0
      const zero = tf.tidy(() => {
        const out = tokenizerForward(tok, x);
        return [out.losses.perceptual.dataSync()[0], out.losses.align.dataSync()[0]];
      });
      expect(zero).toEqual([0, 0]);
    });
    x.dispose();
    tstore.dispose();
  });
});

describe('FQGAN alignment targets', () => {
  it('Triple: two sub-codebooks aligned to two teachers; the align term is the weighted sum of each head\'s InfoNCE', () => {
    const mk = (seed: string, embedDim: number) => {
      const tcfg: TeacherConfig = { imageSize: 8, channels: 1, widths: [4, 8], embedDim, classes: 3, normGroups: 2 };
      const store = new ParamStore(new Rng(seed));
      createTeacher(store, tcfg);
      freezeParams(store);
      return { store, teacher: teacherFromStore(store, tcfg) };
    };
    // tfjs variable names are global: the second teacher's store would clash with the first one's names
    const a = mk('ta', 6);
    const cfg: TokenizerConfig = {
      ...tinyConfig('fq', 3, 0, 'branch'),
      alignTargets: [
        { subCodebook: 1, teacher: 0, teacherDim: 6, weight: 0.5, layers: 1, heads: 2 },
        { subCodebook: 2, teacher: 1, teacherDim: 6, weight: 0.25, layers: 1, heads: 3 },
      ],
    };
    const x = images(3, 'triple');
    // a second "teacher": the first one's embedding reversed along its channels (another embedding of the same width)
    const second = { embedDim: 6, run: (img: tf.Tensor4D) => ({ embedding: tf.reverse(a.teacher.run(img).embedding, 1) as tf.Tensor2D, features: [] }) };
    withTokenizer(cfg, 's', (tok) => {
      const [total, parts] = tf.tidy(() => {
        const out = tokenizerForward(tok, x, { teachers: [a.teacher, second] });
        const e = a.teacher.run(x).embedding;
        const p0 = fqganInfoNCE(alignTargetPredict(tok.params, cfg, 0, out.quantizedSub[1]), e);
        const p1 = fqganInfoNCE(alignTargetPredict(tok.params, cfg, 1, out.quantizedSub[2]), tf.reverse(e, 1) as tf.Tensor2D);
        return [out.losses.align.dataSync()[0], [p0.dataSync()[0], p1.dataSync()[0]]];
      }) as unknown as [number, number[]];
      expect(parts[0]).not.toBeCloseTo(parts[1], 4);
      expect(total).toBeCloseTo(0.5 * parts[0] + 0.25 * parts[1], 5);
      // with only the first teacher given, the second target contributes nothing
      const one = tf.tidy(() => tokenizerForward(tok, x, { teachers: [a.teacher] }).losses.align.dataSync()[0]);
      expect(one).toBeCloseTo(0.5 * parts[0], 5);
    });
    x.dispose();
    a.store.dispose();
  });
});

describe('restartDeadCodes', () => {
  it('moves exactly the unused codes onto current encoder outputs', async () => {
    await withTokenizer(tinyConfig('fq'), 's', async (tok) => {
      const hist = new CodeHistogram([8, 8]);
      // sub-codebook 0 used codes 0..5 (6, 7 dead); sub-codebook 1 used all
      hist.add(new Int32Array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0, 6, 0, 7]));
      const sub = [tf.tensor4d(Array.from({ length: 16 }, (_, i) => i + 1), [1, 2, 2, 4]), tf.zeros([1, 2, 2, 4])];
      const before = tok.params.get('quant/k0/codebook').dataSync().slice();
      const other = tok.params.get('quant/k1/codebook').dataSync().slice();
      const n = await restartDeadCodes(tok, hist, sub, new Rng('restart'));
      expect(n).toBe(2);
      const after = tok.params.get('quant/k0/codebook').dataSync();
      expect(after.slice(0, 24)).toEqual(before.slice(0, 24));
      const rows = [0, 1, 2, 3].map((p) => [1, 2, 3, 4].map((v) => v + 4 * p).join());
      for (const code of [6, 7]) expect(rows).toContain(Array.from(after.slice(code * 4, code * 4 + 4)).join());
      expect(tok.params.get('quant/k1/codebook').dataSync()).toEqual(other);
      tf.dispose(sub);
    });
  });

  it("the EMA follows the restarted rows (the trainer's onRestart): those rows of the average become the new codes, every other value stays", async () => {
    await withTokenizer(tinyConfig('fq'), 's', async (tok) => {
      const ema = new Ema(tok.params.vars, 0.9);
      // move the raw codebooks away from their averages, so that an unchanged average is told apart from a copy
      for (const k of [0, 1]) tf.tidy(() => tok.params.get(`quant/k${k}/codebook`).assign(tf.add(tok.params.get(`quant/k${k}/codebook`), 0.5)));
      const avg0 = ema.shadow.get('quant/k0/codebook')!.dataSync().slice();
      const avg1 = ema.shadow.get('quant/k1/codebook')!.dataSync().slice();
      const hist = new CodeHistogram([8, 8]);
      hist.add(new Int32Array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0, 6, 0, 7])); // sub-codebook 0: 6 and 7 dead
      const sub = [tf.tensor4d(Array.from({ length: 16 }, (_, i) => i + 1), [1, 2, 2, 4]), tf.zeros([1, 2, 2, 4])];
      const told: [string, number[]][] = [];
      await restartDeadCodes(tok, hist, sub, new Rng('restart'), (name, rows) => {
        told.push([name, rows]);
        ema.copyRows(tok.params.vars, name, rows);
      });
      expect(told).toEqual([['quant/k0/codebook', [6, 7]]]);
      const raw = tok.params.get('quant/k0/codebook').dataSync();
      const got = ema.shadow.get('quant/k0/codebook')!.dataSync();
      expect(Array.from(got.slice(24))).toEqual(Array.from(raw.slice(24))); // rows 6, 7: the restarted codes
      expect(Array.from(got.slice(0, 24))).toEqual(Array.from(avg0.slice(0, 24))); // rows 0..5: the average as it was
      expect(Array.from(ema.shadow.get('quant/k1/codebook')!.dataSync())).toEqual(Array.from(avg1));
      tf.dispose(sub);
      ema.dispose();
    });
  });
});
