import * as tf from '@tensorflow/tfjs';
import { optimizerStep, initAdamState, warmupCosine, type AdamWConfig, emaOptionsOf, ParamStore, Rng } from '@factorgen/nn';
import { type LoadedCheckpoint, batchIndices, flipMask, gatherImages, toFloat, type ImageDataset } from '@factorgen/formats';
import { emaPart, runTrainer, type RunDir, type StatePart, type StepOutput, type Trainer, type TrainHooks, type TrainLoopResult } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { type StoredTokenizerConfig, type TokenizerConfig, currentConfig } from '@factorgen/tokenizer';
import { createTokenizer, tokenizerForward, type Tokenizer } from '@factorgen/tokenizer';
import { DeviceCodeHistogram } from '@factorgen/tokenizer';
import { type FrozenTeacher } from '@factorgen/tokenizer';
import { restartDeadCodes } from '@factorgen/tokenizer';
import { createDiscriminator, discriminatorForward, dLossHinge, gLossHinge } from '@factorgen/tokenizer';

import { DISC_PREFIX, STATE_PREFIX, exportRecordOf } from '@factorgen/tokenizer';

export { DISC_PREFIX, STATE_PREFIX };
const USAGE_TENSORS = { counts: `${STATE_PREFIX}usageCounts`, window: `${STATE_PREFIX}usageWindow`, windowSizes: `${STATE_PREFIX}usageWindowSizes` } as const;

/**
 * What the tokenizer's progress line shows: what tells a person training works. The reconstruction loss (mean
 * squared error on [-1,1] pixels; the total loss holds the entropy term, which is negative) and the percentage of each
 * sub-codebook's codes used over the usage window, both current at every step (the loop reads them each step), and
 * lr. metrics.jsonl keeps every term.
 */
export function tokenizerProgressFields(m: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  if (m.recon !== undefined) out.recon = m.recon;
  for (let k = 0; m[`usage${k}`] !== undefined; k++) out[`codes${k}%`] = Math.round(m[`usage${k}`]! * 1000) / 10;
  if (m.lr !== undefined) out.lr = m.lr;
  return out;
}

/** Training hyper-parameters (plain data; stored in the checkpoint's `extra` for the record). */
export type TokenizerTrainConfig = {
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  minLrRatio: number;
  clip: number;
  adamw: AdamWConfig;
  seed: string;
  flip: boolean;
  checkpointEvery: number;
  logEvery: number;
  /** Usage and perplexity are measured over the codes hit in the last `usageWindow` batches. */
  usageWindow: number;
  /** Every this many steps, codes unused over the window are moved onto random current encoder outputs (0 = never). */
  restartDeadEvery: number;
  /** decay of the EMA of the tokenizer's weights (0 = none); the average is what encoding, decoding and export use */
  ema?: number;
  /** EMA warm-up and restart following (EmaOptions); a new run left without them gets both, a resumed run its own */
  emaWarmup?: boolean;
  emaFollowRestarts?: boolean;
};

export type TokenizerTrainRequest = TrainHooks & {
  out: string;
  resume: boolean;
  /** The model config for a new run; on --resume the checkpoint's config is used. */
  config: TokenizerConfig;
  train: TokenizerTrainConfig;
  data: ImageDataset;
  /** Frozen teacher for the perceptual and alignment losses (required when their weights are > 0). */
  teacher?: FrozenTeacher;
  /** The teachers config.alignTargets[i].teacher index (FQGAN alignment); teachers[0] also serves the perceptual loss when `teacher` is absent. */
  teachers?: FrozenTeacher[];
  /** Called after the final checkpoint with the last usage figures. */
  onLog?: (line: string) => void;  /** A fresh run may replace an earlier run in `out` (only factorgen's files there). */
  overwrite?: boolean;
  /** On resume: throws when the request contradicts the checkpoint (e.g. a flag the user gave). */
  checkResume?: (ck: LoadedCheckpoint) => void;
};

export type TokenizerTrainResult = TrainLoopResult & { usage: number[]; perplexity: number[]; checkpointDir: string };

/**
 * Trains a tokenizer (vq or fq) on an image dataset with the FQGAN losses; checkpoints into `<out>/checkpoint`,
 * logs `<out>/metrics.jsonl`. Each step's data and randomness depend only on (seed, step), so resume is exact.
 * Headless: progress comes as events and `signal` stops it after a step, saved (see TrainHooks).
 */
export async function trainTokenizer(req: TokenizerTrainRequest): Promise<TokenizerTrainResult> {
  return runTrainer({ ...req, kind: 'tokenizer' }, (run) => tokenizerTrainer(run, req));
}

function tokenizerTrainer(run: RunDir, req: TokenizerTrainRequest): Trainer<{ usage: number[]; perplexity: number[] }> {
  // Checkpoints keep the config as it was first written (any version: ids hash it so); the run reads it migrated.
  const stored = (run.resumed ? run.resumed.config : req.config) as StoredTokenizerConfig;
  const config = currentConfig(stored, `${run.checkpointDir}/config.json`);
  const d = req.data;
  if (d.height !== config.imageSize || d.width !== config.imageSize || d.channels !== config.channels) {
    throw new UserError(
      `images are ${d.height}x${d.width}x${d.channels}, the tokenizer expects ${config.imageSize}x${config.imageSize}x${config.channels}`,
      { field: 'dataset', value: d.name },
    );
  }
  if (run.resumed && exportRecordOf(run.resumed)) {
    // An export holds the model only; continuing from it would not be the run it came from (exact resume).
    throw new UserError(
      `${run.checkpointDir} holds an exported tokenizer (no optimizer state, discriminator, code-usage window or alignment heads); only the run's own checkpoint resumes`,
      { field: 'resume' },
    );
  }
  // New runs get the EMA warm-up (and the tokenizer's restart following); a resumed run keeps what it recorded.
  const emaOpts = emaOptionsOf(run.resumed ? (run.resumed.extra ?? {}) : null, { warmup: req.train.emaWarmup, followRestarts: req.train.emaFollowRestarts });
  const tc = { ...req.train, emaWarmup: emaOpts.warmup, emaFollowRestarts: emaOpts.followRestarts };
  const needsTeacher = (config.perceptualWeight ?? 0) > 0 || (config.align?.weight ?? 0) > 0;
  if (needsTeacher && !req.teacher && !req.teachers?.length) throw new UserError('the perceptual or alignment loss is on but no teacher was given', { field: 'teacher' });
  for (const t of config.alignTargets) {
    const given = req.teachers?.[t.teacher];
    if (!given) throw new UserError(`sub-codebook ${t.subCodebook} is aligned to teacher ${t.teacher}, but ${req.teachers?.length ?? 0} teacher(s) were given`, { field: 'alignTarget' });
    if (given.embedDim !== t.teacherDim) throw new UserError(`teacher ${t.teacher} has ${given.embedDim}-d embeddings, the checkpoint's head expects ${t.teacherDim}`, { field: 'alignTarget' });
  }

  const tok: Tokenizer = createTokenizer(stored, tc.seed);
  // The discriminator (when the adversarial loss is on) has its own params and optimizer, saved in the same
  // checkpoint under 'disc/' so resume restores it too.
  const adv = config.adversarial && config.adversarial.weight > 0 ? config.adversarial : null;
  const disc = new ParamStore(new Rng(`${tc.seed}/discriminator`));
  if (adv) createDiscriminator(disc, adv, config.channels);
  const allParams = new Map([...tok.params.vars, ...disc.vars]);
  const opt = initAdamState();
  const discOpt = initAdamState();
  const sizes = config.quantizer.subCodebooks.map((s) => s.size);
  const hist = new DeviceCodeHistogram(sizes, tc.usageWindow);
  // The code-usage window, so dead-code restarts after a resume see the codes the run saw.
  const usage: StatePart = {
    owns: (name) => name.startsWith(STATE_PREFIX),
    start: (resumed, where) => {
      // Checkpoints written before the usage window was saved resume with an empty window (as they did then).
      const [counts, window, windowSizes] = [USAGE_TENSORS.counts, USAGE_TENSORS.window, USAGE_TENSORS.windowSizes].map((n) => resumed?.tensors.get(n));
      if (counts && window && windowSizes) {
        const ok =
          [counts, window, windowSizes].every((t) => t.dtype === 'int32') &&
          hist.importState({ counts: counts.data as Int32Array, window: window.data as Int32Array, windowSizes: windowSizes.data as Int32Array });
        if (!ok) throw new UserError(`${where}: the saved code-usage window does not fit the codebook sizes [${sizes.join(',')}]`);
      }
    },
    snapshot: async () => {
      const u = (await hist.read()).exportState();
      const tensors = new Map<string, tf.Tensor>([
        [USAGE_TENSORS.counts, tf.tensor1d(u.counts, 'int32')],
        [USAGE_TENSORS.window, tf.tensor1d(u.window, 'int32')],
        [USAGE_TENSORS.windowSizes, tf.tensor1d(u.windowSizes, 'int32')],
      ]);
      return { tensors, release: () => tf.dispose([...tensors.values()]) };
    },
    dispose: () => hist.dispose(),
  };
  const averaged = emaPart(tok.params.vars, tc.ema ?? 0, emaOpts.warmup);
  const [H, W, C] = [d.height, d.width, d.channels];

  const step = async (s: number): Promise<StepOutput> => {
    const idx = batchIndices(d.n, tc.batch, s, tc.seed);
    const flips = flipMask(tc.batch, s, tc.seed, tc.flip);
    const x = toFloat(gatherImages(d, idx, flips), [tc.batch, H, W, C]);
    const lr = warmupCosine(s, tc.lr, tc.warmup, tc.steps, tc.minLrRatio);
    const rng = new Rng(`${tc.seed}/tokenizer-step${s}`);
    let terms: Record<string, tf.Scalar> = {};
    let indices: tf.Tensor | null = null;
    let subCodes: tf.Tensor[] = [];
    let recon: tf.Tensor4D | null = null;
    const advOn = adv !== null && s >= adv.startStep;
    const { loss, gradNorm } = optimizerStep(() => {
      const out = tokenizerForward(tok, x, { training: true, teacher: req.teacher, teachers: req.teachers, rng });
      indices = tf.keep(out.indices);
      subCodes = out.subCodes.map((t) => tf.keep(t));
      if (advOn) {
        recon = tf.keep(out.recon);
        terms.adversarial = tf.keep(tf.mul(gLossHinge(discriminatorForward(disc, adv, out.recon)), adv.weight) as tf.Scalar);
      }
      terms = { ...terms, ...Object.fromEntries(Object.entries(out.losses).map(([k, v]) => [k, tf.keep(v)])) };
      return advOn ? (tf.add(out.total, terms.adversarial) as tf.Scalar) : out.total;
    }, tok.params.vars, opt, tc.adamw, lr, tc.clip);
    const ema = averaged.ema;
    ema?.update(tok.params.vars, s);
    // Tensors: the training loop reads them when it logs this step (and checks them for NaN/Inf every step).
    const m: StepOutput = { loss, lr, gradNorm };
    try {
      if (advOn && recon) {
        // Discriminator step on real images vs the (detached) reconstructions of this batch.
        const fake = recon as tf.Tensor4D;
        const d = optimizerStep(() => dLossHinge(discriminatorForward(disc, adv, x), discriminatorForward(disc, adv, fake)), disc.vars, discOpt, tc.adamw, lr, tc.clip);
        m.discriminator = d.loss;
        d.gradNorm.dispose();
        fake.dispose();
      }
      Object.assign(m, terms);
      hist.add(indices!);
      // Code usage over the window after this batch, for the progress line (read with the NaN check each step).
      hist.usageScalars().forEach((u, k) => (m[`usage${k}`] = u));
      if (tc.restartDeadEvery > 0 && (s + 1) % tc.restartDeadEvery === 0) {
        m.restarted = await restartDeadCodes(tok, await hist.read(), subCodes, rng, ema && emaOpts.followRestarts ? (name, rows) => ema.copyRows(tok.params.vars, name, rows) : undefined);
      }
    } finally {
      tf.dispose([x, indices!, ...subCodes]);
    }
    return m;
  };

  const periodic = async (): Promise<Record<string, number>> => {
    const h = await hist.read();
    const out: Record<string, number> = {};
    h.usage().forEach((u, k) => (out[`usage${k}`] = u));
    h.perplexity().forEach((p, k) => (out[`perplexity${k}`] = p));
    return out;
  };

  return {
    config: stored,
    params: allParams,
    optimizers: [{ state: opt }, { state: discOpt, owns: (name) => name.startsWith(DISC_PREFIX), stepKey: 'discStep' }],
    parts: [usage, averaged],
    extra: () => ({ train: tc, dataset: d.name }),
    loop: {
      label: 'tokenizer',
      totalSteps: tc.steps,
      step,
      checkpointEvery: tc.checkpointEvery,
      periodic,
      logEvery: tc.logEvery,
      progress: { readEveryStep: ['recon', ...sizes.map((_, k) => `usage${k}`)], show: tokenizerProgressFields },
      itemsPerStep: tc.batch,
      itemName: 'images',
    },
    finish: async () => {
      const h = await hist.read();
      return { usage: h.usage(), perplexity: h.perplexity() };
    },
    dispose: () => {
      tok.params.dispose();
      disc.dispose();
    },
  };
}
