import * as tf from '@tensorflow/tfjs';
import { ParamStore, fanInUniform, Rng, optimizerStep, disposeAdamState, initAdamState, warmupCosine, linear, groupNorm, softmaxCrossEntropy } from '@factorgen/nn';
import { batchIndices, flipMask, gatherImages, gatherLabels, toFloat } from '@factorgen/formats';
import type { AdamWConfig } from '@factorgen/nn';
import type { ImageDataset } from '@factorgen/formats';

/**
 * The evaluation feature network: a small residual CNN classifier with batch-free GroupNorm.
 * stem conv + ReLU -> per stage [2x2 mean pool, GN, ReLU, conv, residual blocks] -> GN, ReLU, flatten
 * -> linear + ReLU = features [B, featureDim] -> linear = logits [B, classes].
 * Flatten rather than global pooling: the layout (sleeve length, where a strap is) matters for these classes, and
 * on Fashion-MNIST it trains much faster (87% vs 75% test accuracy after 300 steps in a side-by-side run).
 * It is deliberately unlike the tokenizer's teacher (a plain conv stack) so the metric does not reward
 * matching the teacher's own features.
 */
export type FeatureNetConfig = {
  height: number;
  width: number;
  channels: 1 | 3;
  classes: number;
  /** Stem width, then one entry per half-resolution stage. */
  widths: number[];
  /** Residual blocks in each half-resolution stage (length widths.length - 1). */
  blocks: number[];
  featureDim: number;
  /** GroupNorm groups; must divide every width. */
  groups: number;
  /**
   * Channels of a 1x1 conv between the last stage and the flatten (absent: flatten the last stage as is).
   * It keeps the fully connected layer, which holds most of the weights, small enough to commit.
   */
  reduce?: number;
  /**
   * Extra FID features: for each entry, the spatial mean of tap `tap`'s map (0 = the stem's ReLU output, s = stage s's
   * output) times `scale`, appended to the fc features. A classifier's last features are nearly blind to blur (its
   * classes survive blur); the mean responses of the early filters are not, so with these FID sees blur.
   */
  fidTaps?: { tap: number; scale: number }[];
};

/** Length of the FID feature vector: featureDim plus the channels of every fidTaps entry. */
export function fidDim(cfg: FeatureNetConfig): number {
  return cfg.featureDim + (cfg.fidTaps ?? []).reduce((s, t) => s + cfg.widths[t.tap], 0);
}

/** A feature network: its config and its weights (named "featnet/..." in the store). */
export type FeatureNet = { cfg: FeatureNetConfig; store: ParamStore };

/** Parameter-name prefix in the store (and in saved weights). */
export const FEATNET_PREFIX = 'featnet';

/**
 * The standard config for a dataset: widths [16, 32, 64] (28 -> 14 -> 7), a residual block in the last stage only
 * (the 14x14 one cost 40% more time per step), 128-d features, 8 groups.
 */
export function defaultFeatureNetConfig(ds: Pick<ImageDataset, 'height' | 'width' | 'channels' | 'classNames'>): FeatureNetConfig {
  return {
    height: ds.height,
    width: ds.width,
    channels: ds.channels,
    classes: ds.classNames.length,
    widths: [16, 32, 64],
    blocks: [0, 1],
    featureDim: 128,
    groups: 8,
  };
}

/**
 * The committed evaluator's architecture: the standard one with a 16-channel 1x1 reduction before the flatten, so its
 * fully connected layer is 784x128 instead of 3136x128 (about 200k weights, 0.4 MB at float16).
 */
export function evaluatorConfig(base: FeatureNetConfig): FeatureNetConfig {
  return { ...base, reduce: 16 };
}

function validateConfig(cfg: FeatureNetConfig): void {
  if (cfg.widths.length < 1) throw new Error('FeatureNetConfig.widths: need at least the stem width');
  if (cfg.blocks.length !== cfg.widths.length - 1) {
    throw new Error(`FeatureNetConfig.blocks: ${cfg.blocks.length} entries for ${cfg.widths.length - 1} stages`);
  }
  for (const w of cfg.widths) {
    if (w % cfg.groups !== 0) throw new Error(`FeatureNetConfig: width ${w} is not divisible by groups=${cfg.groups}`);
  }
}

function convParams(store: ParamStore, name: string, cin: number, cout: number, zeroInit = false): void {
  store.create(`${name}/w`, [3, 3, cin, cout], zeroInit ? { kind: 'zeros' } : fanInUniform(9 * cin));
  store.create(`${name}/b`, [cout], { kind: 'zeros' });
}

function normParams(store: ParamStore, name: string, c: number): void {
  store.create(`${name}/gamma`, [c], { kind: 'ones' });
  store.create(`${name}/beta`, [c], { kind: 'zeros' });
}

/** Length of the flattened last feature map: each stage halves H and W (rounding down, as 'valid' pooling does). */
function flatSize(cfg: FeatureNetConfig): number {
  const halvings = cfg.widths.length - 1;
  const h = Math.floor(cfg.height / 2 ** halvings);
  const w = Math.floor(cfg.width / 2 ** halvings);
  if (h < 1 || w < 1) throw new Error(`FeatureNetConfig: ${cfg.height}x${cfg.width} is too small for ${halvings} halvings`);
  return h * w * (cfg.reduce ?? cfg.widths[cfg.widths.length - 1]);
}

/**
 * Creates the feature network's parameters in `store` (initialized from the store's Rng).
 * The residual branches' second convs start at zero, so every block starts as the identity.
 */
export function createFeatureNet(store: ParamStore, cfg: FeatureNetConfig): void {
  validateConfig(cfg);
  const p = FEATNET_PREFIX;
  convParams(store, `${p}/stem`, cfg.channels, cfg.widths[0]);
  for (let s = 1; s < cfg.widths.length; s++) {
    const cin = cfg.widths[s - 1];
    const c = cfg.widths[s];
    normParams(store, `${p}/stage${s}/down/norm`, cin);
    convParams(store, `${p}/stage${s}/down/conv`, cin, c);
    for (let b = 0; b < cfg.blocks[s - 1]; b++) {
      const r = `${p}/stage${s}/res${b}`;
      normParams(store, `${r}/norm1`, c);
      convParams(store, `${r}/conv1`, c, c);
      normParams(store, `${r}/norm2`, c);
      convParams(store, `${r}/conv2`, c, c, true);
    }
  }
  const last = cfg.widths[cfg.widths.length - 1];
  normParams(store, `${p}/final/norm`, last);
  if (cfg.reduce !== undefined) {
    store.create(`${p}/reduce/w`, [last, cfg.reduce], fanInUniform(last));
    store.create(`${p}/reduce/b`, [cfg.reduce], { kind: 'zeros' });
  }
  const flat = flatSize(cfg);
  store.create(`${p}/fc/w`, [flat, cfg.featureDim], fanInUniform(flat));
  store.create(`${p}/fc/b`, [cfg.featureDim], { kind: 'zeros' });
  store.create(`${p}/head/w`, [cfg.featureDim, cfg.classes], fanInUniform(cfg.featureDim));
  store.create(`${p}/head/b`, [cfg.classes], { kind: 'zeros' });
}

/**
 * 3x3 stride-1 'same' convolution whose gradient is written as two more forward convolutions.
 * x: [B,H,W,Cin], w: [3,3,Cin,Cout] -> [B,H,W,Cout].
 * Why: tfjs-wasm's Conv2DBackpropInput is a naive loop (~10x slower than its Conv2D), wasm has no
 * Conv2DBackpropFilter of its own and cpu's is slow; Conv2D is the one fast kernel everywhere.
 * - dx: the same 'same' conv of dy with the kernel flipped and its channel axes swapped;
 * - dw[kh,kw,ci,co] = sum_{b,y,x} xpad[b,y+kh,x+kw,ci] dy[b,y,x,co]: a conv of x with batch and channels swapped
 *   ([Cin,H,W,B]) by dy as an HxW filter ([H,W,B,Cout]), padded by 1, which leaves a 3x3 output.
 */
export const conv3x3Same = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  // customGrad passes the inputs, then the save function.
  const [x, w, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
  if (w.shape[0] !== 3 || w.shape[1] !== 3) throw new Error(`conv3x3Same: kernel must be 3x3, got ${w.shape}`);
  save([x, w]);
  return {
    value: tf.conv2d(x, w, 1, 'same'),
    gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
      const flipped = tf.transpose(tf.reverse(ws, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
      const dx = tf.conv2d(dy, flipped, 1, 'same');
      const xT = tf.transpose(xs, [3, 1, 2, 0]) as tf.Tensor4D;
      const dyT = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
      const dwT = tf.conv2d(xT, dyT, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]); // [Cin,3,3,Cout]
      return [dx, tf.transpose(dwT, [1, 2, 0, 3])];
    },
  };
}) as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;

/** 3x3 'same' conv + bias. x: [B,H,W,Cin] -> [B,H,W,Cout]. */
function conv(store: ParamStore, name: string, x: tf.Tensor4D): tf.Tensor4D {
  return tf.add(conv3x3Same(x, store.get(`${name}/w`) as tf.Tensor4D), store.get(`${name}/b`)) as tf.Tensor4D;
}

/**
 * GroupNorm (nn's groupNorm, eps 1e-5, squares as d * d: this net's arithmetic since it was first trained) then ReLU, statistics per sample and group (no batch statistics, so features
 * of an image do not depend on its batch). x: [B,H,W,C] -> same.
 */
function normRelu(store: ParamStore, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  return tf.relu(groupNorm(store, name, x, groups, { eps: 1e-5, squares: 'product' }));
}

/**
 * Forward pass. x: [B,H,W,C] floats in [-1, 1] -> features [B, featureDim] (post-ReLU penultimate layer),
 * logits [B, classes]. Call inside tf.tidy (or dispose the results).
 */
export function featureForward(
  store: ParamStore,
  cfg: FeatureNetConfig,
  x: tf.Tensor4D,
): { features: tf.Tensor2D; logits: tf.Tensor2D; taps: tf.Tensor4D[] } {
  const p = FEATNET_PREFIX;
  // ReLU but no norm on the full-resolution stem: a nonlinearity before the first pooling, at the cost of one pass.
  let h = tf.relu(conv(store, `${p}/stem`, x));
  // taps: the stem's and every stage's output maps (stage outputs are pre-norm), for features that see texture.
  const taps: tf.Tensor4D[] = [h];
  for (let s = 1; s < cfg.widths.length; s++) {
    // 2x2 mean pooling first, so the norm and the conv run at the lower resolution (cheaper than a stride-2 conv
    // and its gradient).
    const pooled = tf.avgPool(h, 2, 2, 'valid');
    h = conv(store, `${p}/stage${s}/down/conv`, normRelu(store, `${p}/stage${s}/down/norm`, pooled, cfg.groups));
    for (let b = 0; b < cfg.blocks[s - 1]; b++) {
      const name = `${p}/stage${s}/res${b}`;
      const r = conv(store, `${name}/conv1`, normRelu(store, `${name}/norm1`, h, cfg.groups));
      h = tf.add(h, conv(store, `${name}/conv2`, normRelu(store, `${name}/norm2`, r, cfg.groups)));
    }
    taps.push(h);
  }
  let last = normRelu(store, `${p}/final/norm`, h, cfg.groups);
  if (cfg.reduce !== undefined) {
    // 1x1 conv as a matmul over the channel axis: [B*H*W, C] @ [C, reduce].
    const [b, hh, ww, c] = last.shape;
    const m = linear(tf.reshape(last, [b * hh * ww, c]), store.get(`${p}/reduce/w`), store.get(`${p}/reduce/b`));
    last = tf.reshape(tf.relu(m), [b, hh, ww, cfg.reduce]) as tf.Tensor4D;
  }
  const flat = tf.reshape(last, [x.shape[0], -1]);
  const features = tf.relu(linear(flat, store.get(`${p}/fc/w`), store.get(`${p}/fc/b`))) as tf.Tensor2D;
  const logits = linear(features, store.get(`${p}/head/w`), store.get(`${p}/head/b`)) as tf.Tensor2D;
  return { features, logits, taps };
}

/** One training step's report. */
export type FeatureNetStep = { step: number; loss: number; accuracy: number; lr: number; seconds: number };

export type TrainFeatureNetOptions = {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  /** Warmup steps (default 5% of steps). */
  warmup?: number;
  weightDecay?: number;
  /**
   * Random left-right flips. Default off: Fashion-MNIST's shoes all face one way (99.7% of sneakers and 100% of
   * ankle boots are nearer their class mean than its mirror image), so flips add images the test split lacks.
   */
  flip?: boolean;
  /** Architecture; defaults to defaultFeatureNetConfig(ds). */
  config?: FeatureNetConfig;
  /** Called every `logEvery` steps (default 10) and after the last one; reads loss and accuracy back only then. */
  onStep?: (s: FeatureNetStep) => void;
  logEvery?: number;
};

/** The options that change the trained weights (everything but the callback and logEvery), e.g. for a cache key. */
export function trainingIdentity(ds: ImageDataset, opts: TrainFeatureNetOptions): object {
  return {
    config: opts.config ?? defaultFeatureNetConfig(ds),
    steps: opts.steps,
    batch: opts.batch,
    lr: opts.lr,
    seed: opts.seed,
    warmup: opts.warmup ?? Math.floor(opts.steps / 20),
    weightDecay: opts.weightDecay ?? 0.01,
    flip: opts.flip ?? false,
  };
}

/**
 * Trains a feature network on `ds` (the train split) with AdamW + warmup/cosine (optionally random left-right
 * flips). Batches come from shared's seeded batchIndices/flipMask, so a seed gives the same run on the same backend.
 */
export async function trainFeatureNet(ds: ImageDataset, opts: TrainFeatureNetOptions): Promise<FeatureNet> {
  const cfg = opts.config ?? defaultFeatureNetConfig(ds);
  if (cfg.height !== ds.height || cfg.width !== ds.width || cfg.channels !== ds.channels) {
    throw new Error(`trainFeatureNet: config is ${cfg.height}x${cfg.width}x${cfg.channels}, data ${ds.height}x${ds.width}x${ds.channels}`);
  }
  const seed = `featnet/${opts.seed}`;
  const store = new ParamStore(new Rng(`${seed}/init`));
  createFeatureNet(store, cfg);
  const optim: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: opts.weightDecay ?? 0.01 };
  const warmup = opts.warmup ?? Math.floor(opts.steps / 20);
  const state = initAdamState();
  const params = store.trainable();
  const batch = Math.min(opts.batch, ds.n);
  const shape: [number, number, number, number] = [batch, ds.height, ds.width, ds.channels];
  const t0 = performance.now();
  try {
    for (let step = 0; step < opts.steps; step++) {
      const idx = batchIndices(ds.n, batch, step, seed);
      const x = toFloat(gatherImages(ds, idx, flipMask(batch, step, seed, opts.flip ?? false)), shape);
      const y = tf.tensor1d(gatherLabels(ds, idx), 'int32');
      const report = opts.onStep && ((step + 1) % (opts.logEvery ?? 10) === 0 || step + 1 === opts.steps);
      let correct: tf.Scalar | null = null;
      const lr = warmupCosine(step, opts.lr, warmup, opts.steps);
      // clip 0: this net trains without gradient clipping
      const { loss, gradNorm } = optimizerStep(() => {
        const { logits } = featureForward(store, cfg, x);
        if (report) correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32')) as tf.Scalar);
        return softmaxCrossEntropy(logits, y);
      }, params, state, optim, lr, 0);
      tf.dispose([x, y, gradNorm]);
      if (report && correct) {
        const [l, c] = await Promise.all([loss.data(), (correct as tf.Scalar).data()]);
        opts.onStep!({ step: step + 1, loss: l[0], accuracy: c[0] / batch, lr, seconds: (performance.now() - t0) / 1000 });
      }
      tf.dispose([loss, ...(correct ? [correct] : [])]);
    }
  } finally {
    disposeAdamState(state);
  }
  return { cfg, store };
}

/**
 * FID features [N, fidDim(cfg)] (fc features, then the fidTaps means) and logits [N, classes] of every image of `ds` (row-major Float32Arrays),
 * computed in batches of `batch`.
 */
export async function extractFeatures(net: FeatureNet, ds: ImageDataset, batch = 250): Promise<{ features: Float32Array; logits: Float32Array }> {
  const { cfg, store } = net;
  if (cfg.height !== ds.height || cfg.width !== ds.width || cfg.channels !== ds.channels) {
    throw new Error(`${ds.name}: images are ${ds.height}x${ds.width}x${ds.channels}, the feature net expects ${cfg.height}x${cfg.width}x${cfg.channels}`);
  }
  const dim = fidDim(cfg);
  const features = new Float32Array(ds.n * dim);
  const logits = new Float32Array(ds.n * cfg.classes);
  for (let start = 0; start < ds.n; start += batch) {
    const count = Math.min(batch, ds.n - start);
    const pixels = ds.images.subarray(start * ds.height * ds.width * ds.channels, (start + count) * ds.height * ds.width * ds.channels);
    const [f, l] = tf.tidy(() => {
      const out = featureForward(store, cfg, toFloat(pixels, [count, ds.height, ds.width, ds.channels]));
      const extra = (cfg.fidTaps ?? []).map((t) => tf.mul(tf.mean(out.taps[t.tap], [1, 2]), t.scale));
      return [extra.length > 0 ? tf.concat([out.features, ...extra], 1) : out.features, out.logits];
    });
    const [fd, ld] = await Promise.all([f.data(), l.data()]);
    features.set(fd as Float32Array, start * dim);
    logits.set(ld as Float32Array, start * cfg.classes);
    tf.dispose([f, l]);
  }
  return { features, logits };
}
