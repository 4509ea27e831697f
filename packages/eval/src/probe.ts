import { Rng } from '@factorgen/nn';
import { accuracy } from './metrics';

/** Options of linearProbe. */
export type LinearProbeOptions = {
  /** full-batch Adam steps (default 500) */
  steps?: number;
  /** Adam learning rate (default 0.05) */
  lr?: number;
  /** L2 penalty on the weights (default 1e-4) */
  l2?: number;
  /** seed of the initial weights (default 0) */
  seed?: number;
  /** called after each Adam step with the steps done (1..steps), for progress */
  onStep?: (step: number) => void;
};

/**
 * Linear probe (UniTok's "understanding from the tokens" as a measurement): a softmax-regression classifier
 * logits = x W + b trained on (trainX, trainY) by full-batch Adam on mean cross-entropy + l2 |W|^2, after
 * standardizing every feature with the train set's mean and std; returns its accuracy on (testX, testY) and on the
 * train set (plain Float64 arithmetic, no tensors). trainX: [N, D] row-major, testX: [M, D], labels int in 0..classes-1.
 */
export function linearProbe(
  train: { x: Float32Array; y: Int32Array },
  test: { x: Float32Array; y: Int32Array },
  dim: number,
  classes: number,
  opts: LinearProbeOptions = {},
): { testAccuracy: number; trainAccuracy: number } {
  const n = train.y.length;
  const m = test.y.length;
  if (train.x.length !== n * dim || test.x.length !== m * dim) throw new Error(`linearProbe: features are not [N, ${dim}]`);
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += train.x[i * dim + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) std[j] += (train.x[i * dim + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < dim; j++) std[j] = Math.sqrt(std[j]) || 1; // a constant feature stays 0 after centring
  const standardize = (x: Float32Array) => Float64Array.from(x, (v, i) => (v - mean[i % dim]) / std[i % dim]);
  const xs = standardize(train.x);
  const xt = standardize(test.x);
  // Plain Float64 softmax regression: D and the class count are small, and it leaves no tensors behind.
  const rng = new Rng(`probe/${opts.seed ?? 0}`);
  const P = (dim + 1) * classes; // weights [dim, classes] then bias [classes]
  const theta = Float64Array.from({ length: P }, (_v, i) => (i < dim * classes ? 0.01 * rng.normal() : 0));
  const mom = new Float64Array(P);
  const vel = new Float64Array(P);
  const grad = new Float64Array(P);
  const logits = new Float64Array(classes);
  const lr = opts.lr ?? 0.05;
  const l2 = opts.l2 ?? 1e-4;
  const scores = (x: Float64Array, i: number) => {
    for (let c = 0; c < classes; c++) {
      let z = theta[dim * classes + c];
      for (let j = 0; j < dim; j++) z += x[i * dim + j] * theta[j * classes + c];
      logits[c] = z;
    }
  };
  const steps = opts.steps ?? 500;
  for (let s = 1; s <= steps; s++) {
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      scores(xs, i);
      let mx = -Infinity;
      for (let c = 0; c < classes; c++) mx = Math.max(mx, logits[c]);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += (logits[c] = Math.exp(logits[c] - mx));
      for (let c = 0; c < classes; c++) {
        const d = (logits[c] / sum - (train.y[i] === c ? 1 : 0)) / n; // d(mean CE)/d logit
        grad[dim * classes + c] += d;
        for (let j = 0; j < dim; j++) grad[j * classes + c] += xs[i * dim + j] * d;
      }
    }
    for (let p = 0; p < dim * classes; p++) grad[p] += 2 * l2 * theta[p];
    // Adam (beta1 0.9, beta2 0.999, eps 1e-8) with bias correction.
    for (let p = 0; p < P; p++) {
      mom[p] = 0.9 * mom[p] + 0.1 * grad[p];
      vel[p] = 0.999 * vel[p] + 0.001 * grad[p] * grad[p];
      theta[p] -= (lr * (mom[p] / (1 - 0.9 ** s))) / (Math.sqrt(vel[p] / (1 - 0.999 ** s)) + 1e-8);
    }
    opts.onStep?.(s);
  }
  const predict = (x: Float64Array, rows: number) =>
    Int32Array.from({ length: rows }, (_v, i) => {
      scores(x, i);
      let best = 0;
      for (let c = 1; c < classes; c++) if (logits[c] > logits[best]) best = c;
      return best;
    });
  return { testAccuracy: accuracy(predict(xt, m), test.y), trainAccuracy: accuracy(predict(xs, n), train.y) };
}
