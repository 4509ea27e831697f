import * as tf from '@tensorflow/tfjs';
import { optimizerStep, initAdamState, warmupCosine, type AdamWConfig, emaOptionsOf, Rng } from '@factorgen/nn';
import { type LoadedCheckpoint, batchIndices } from '@factorgen/formats';
import { emaPart, runTrainer, type RunDir, type StepOutput, type Trainer, type TrainHooks, type TrainLoopResult } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { type TokenSet, type TokenFileHeader } from '@factorgen/io';
import { type GeneratorConfig, type StoredGeneratorConfig, currentGeneratorConfig } from '@factorgen/generator';
import { createGenerator, generatorLoss, type Generator } from '@factorgen/generator';

export type GeneratorTrainConfig = {
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  clip: number;
  adamw: AdamWConfig;
  seed: string;
  checkpointEvery: number;
  logEvery: number;
  /** Validation loss on the held-out token file every this many steps (0 = only at the end). */
  valEvery: number;
  /** At most this many held-out sequences are scored (keeps validation cheap). */
  valLimit: number;
  /** decay of the EMA of the generator's weights (0 = none); the average is what sampling and export use */
  ema?: number;
  /** EMA warm-up (EmaOptions); a new run left without it gets it, a resumed run keeps its own */
  emaWarmup?: boolean;
};

export type GeneratorTrainRequest = TrainHooks & {
  out: string;
  resume: boolean;
  config: GeneratorConfig;
  train: GeneratorTrainConfig;
  tokens: TokenSet;
  /** Path of the training token file, kept in the checkpoint for the record. */
  tokensPath: string;
  val?: TokenSet;
  /** A fresh run may replace an earlier run in `out` (only factorgen's files there). */
  overwrite?: boolean;
  /** On resume: throws when the request contradicts the checkpoint (e.g. a flag the user gave). */
  checkResume?: (ck: LoadedCheckpoint) => void;
};

export type GeneratorTrainResult = TrainLoopResult & { valLoss: number | null; checkpointDir: string };

/** Checks that a held-out or training token set fits a generator config (grid, sub-codebooks, classes). */
export function checkTokensFit(where: string, h: TokenFileHeader, cfg: GeneratorConfig): void {
  const sizes = h.subCodebookSizes.join(',');
  if (h.gridH !== cfg.gridH || h.gridW !== cfg.gridW || sizes !== cfg.subCodebookSizes.join(',') || h.classNames.length !== cfg.numClasses) {
    throw new UserError(
      `${where}: token file has grid ${h.gridH}x${h.gridW}, sub-codebooks [${sizes}], ${h.classNames.length} classes; ` +
        `the generator expects ${cfg.gridH}x${cfg.gridW}, [${cfg.subCodebookSizes.join(',')}], ${cfg.numClasses} classes`,
    );
  }
}

/** "[a, b, c]" */
const showNames = (names: string[]) => `[${names.join(', ')}]`;

/** Refuses a class-name list that is not `expected` (same names, same order), naming both. */
export function checkClassNames(where: string, names: string[], expected: string[], expectedWhat: string): void {
  if (names.length !== expected.length || names.some((n, i) => n !== expected[i])) {
    throw new UserError(`${where}: classes ${showNames(names)} differ from ${expectedWhat} ${showNames(expected)}`);
  }
}

/** Mean loss of `set` (first `limit` sequences) without dropout or label dropout; summed on the device, read once. */
export async function evaluateLoss(gen: Generator, set: TokenSet, batch: number, limit: number): Promise<number> {
  const T = set.header.gridH * set.header.gridW;
  const K = set.header.subCodebookSizes.length;
  const n = Math.min(limit, set.header.count);
  let sum: tf.Scalar = tf.scalar(0);
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const next = tf.tidy(() => {
      const tokens = tf.tensor3d(set.tokens.subarray(i * T * K, (i + b) * T * K), [b, T, K], 'int32');
      return tf.add(sum, tf.mul(generatorLoss(gen, tokens, set.labels.subarray(i, i + b), { training: false }).loss, b)) as tf.Scalar;
    });
    sum.dispose();
    sum = next;
  }
  const total = (await sum.data())[0];
  sum.dispose();
  return total / Math.max(1, n);
}

/**
 * Trains the factorized AR generator on a token file. Checkpoints into `<out>/checkpoint` with the token file's header
 * (so `sample` finds and checks the tokenizer), logs `<out>/metrics.jsonl`.
 */
export async function trainGenerator(req: GeneratorTrainRequest): Promise<GeneratorTrainResult> {
  return runTrainer({ ...req, kind: 'generator' }, (run) => generatorTrainer(run, req));
}

function generatorTrainer(run: RunDir, req: GeneratorTrainRequest): Trainer<{ valLoss: number | null }> {
  // Checkpoints keep the config as it was first written (any version); the run reads it migrated.
  const stored = (run.resumed ? run.resumed.config : req.config) as StoredGeneratorConfig;
  const config = currentGeneratorConfig(stored);
  const h = req.tokens.header;
  checkTokensFit(`\`tokens\` ${req.tokensPath}`, h, config);
  if (req.val) {
    checkTokensFit('`val`', req.val.header, config);
    if (req.val.header.tokenizerId !== h.tokenizerId) {
      throw new UserError(`written by tokenizer ${req.val.header.tokenizerId}, \`tokens\` by ${h.tokenizerId}`, { field: 'val' });
    }
    checkClassNames('`val`', req.val.header.classNames, h.classNames, "`tokens`'");
  }
  if (run.resumed) {
    const prev = run.resumed.extra as { tokenizerId?: string; classNames?: string[] } | undefined;
    if (prev?.tokenizerId && prev.tokenizerId !== h.tokenizerId) {
      throw new UserError(`written by tokenizer ${h.tokenizerId}, the run was trained on ${prev.tokenizerId}`, { field: 'tokens', value: req.tokensPath });
    }
    // The run's class names stay its own: a token file naming other classes (or the same in another order) is refused.
    if (Array.isArray(prev?.classNames)) checkClassNames(`\`tokens\` ${req.tokensPath}`, h.classNames, prev.classNames, "the run's");
  }
  // New runs get the EMA warm-up; a resumed run keeps what it recorded (none before emaWarmup existed).
  const emaOpts = emaOptionsOf(run.resumed ? (run.resumed.extra ?? {}) : null, { warmup: req.train.emaWarmup });
  const tc = { ...req.train, emaWarmup: emaOpts.warmup };
  const gen = createGenerator(config, tc.seed);
  const opt = initAdamState();
  const averaged = emaPart(gen.params.vars, tc.ema ?? 0, emaOpts.warmup);
  const T = h.gridH * h.gridW;
  const K = h.subCodebookSizes.length;
  const tokens = new Int32Array(tc.batch * T * K);
  const labels = new Int32Array(tc.batch);
  let valLoss: number | null = null;

  const step = async (s: number): Promise<StepOutput> => {
    const idx = batchIndices(h.count, tc.batch, s, tc.seed);
    for (let b = 0; b < tc.batch; b++) {
      const i = idx[b];
      tokens.set(req.tokens.tokens.subarray(i * T * K, (i + 1) * T * K), b * T * K);
      labels[b] = req.tokens.labels[i];
    }
    const rng = new Rng(`${tc.seed}/generator-step${s}`);
    const lr = warmupCosine(s, tc.lr, tc.warmup, tc.steps, tc.minLrRatio);
    const tokT = tf.tensor3d(tokens, [tc.batch, T, K], 'int32');
    let accs: tf.Scalar[] = [];
    let subs: tf.Scalar[] = [];
    const { loss, gradNorm } = optimizerStep(() => {
      const out = generatorLoss(gen, tokT, labels, { training: true, rng });
      accs = out.subAccuracy.map((a) => tf.keep(a));
      subs = out.subLosses.map((a) => tf.keep(a));
      return out.loss;
    }, gen.params.vars, opt, tc.adamw, lr, tc.clip);
    averaged.ema?.update(gen.params.vars, s);
    tokT.dispose();
    // Tensors: the training loop reads them when it logs this step (and checks them for NaN/Inf every step).
    const m: StepOutput = { loss, lr, gradNorm };
    accs.forEach((a, k) => (m[`acc${k}`] = a));
    subs.forEach((a, k) => (m[`loss${k}`] = a));
    return m;
  };

  const periodic = async (stepsDone: number): Promise<Record<string, number>> => {
    if (!req.val) return {};
    if ((tc.valEvery > 0 && stepsDone % tc.valEvery === 0) || stepsDone === tc.steps) {
      valLoss = await evaluateLoss(gen, req.val, tc.batch, tc.valLimit);
      return { valLoss };
    }
    return {};
  };

  return {
    config: stored,
    params: gen.params.vars,
    optimizers: [{ state: opt }],
    parts: [averaged],
    extra: () => ({ train: tc, tokens: req.tokensPath, tokenizerId: h.tokenizerId, tokenizerPath: h.tokenizerPath, classNames: h.classNames }),
    loop: {
      label: 'generator',
      totalSteps: tc.steps,
      step,
      checkpointEvery: tc.checkpointEvery,
      periodic,
      logEvery: tc.logEvery,
      // a "token" is one grid position (holding K sub-tokens), as in the README
      itemsPerStep: tc.batch * T,
      itemName: 'tokens',
    },
    finish: () => ({ valLoss }),
    dispose: () => gen.params.dispose(),
  };
}
