import * as tf from '@tensorflow/tfjs';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { createGenerator, generatorLoss, makeGeneratorConfig, type GeneratorConfig } from '../packages/generator/src/index';
import { initBackend } from '../packages/shared/src/backend';
import { GradPool, gradsAt, meanGrads, type GradResult, type GradTask } from '../packages/shared/src/parallel/gradPool';
import { Rng } from '../packages/shared/src/rng';

/**
 * --threads against the data-parallel gradient pool on the issue-10 generator (width 256 x 6, 8 heads, 2-layer AR
 * head, MLP 704, codes 2 x 256, 7x7 grid): the same model and global batch, gradients either from the main thread
 * on the threaded wasm build (`threads` mode) or from 2 workers on the stock build, half the batch each (`pool`).
 * The optimizer update is left out of both (the same cheap elementwise work either way).
 *
 * Run: npx tsx bench/dataParallelGenerator.ts threads|pool [batch 64] [steps 6] [width 256]
 */

/** A token batch: tokens [batch, 49, 2] flat and labels [batch]. */
export type TokenShard = { tokens: Int32Array; labels: Int32Array; batch: number; step: number };

export const generatorConfig = (width: number): GeneratorConfig =>
  makeGeneratorConfig({
    width, depth: 6, heads: 8, mlpHidden: 704, headLayers: 2, headWidth: width, headHeads: 8, headMlpHidden: 704,
    subCodebookSizes: [256, 256], dropout: 0,
  });

/** GradPool task module: the generator's variables and its loss gradients at given weights on one shard. */
export function createGradTask(init: { width: number }): GradTask<TokenShard> {
  const gen = createGenerator(generatorConfig(init.width), 0);
  const vars = [...gen.params.vars.values()];
  return {
    computeGrads: async (weights, s) => ({
      ...(await gradsAt(vars, weights, () => {
        const tokens = tf.tensor3d(s.tokens, [s.batch, 49, 2], 'int32');
        return generatorLoss(gen, tokens, s.labels, { training: true, rng: new Rng(`bench/${s.step}`) }).loss;
      })),
      size: s.batch,
    }),
  };
}

function shards(batch: number, k: number, step: number): TokenShard[] {
  const rng = new Rng(`bench-tokens/${step}`);
  const tokens = Int32Array.from({ length: batch * 49 * 2 }, () => rng.int(256));
  const labels = Int32Array.from({ length: batch }, () => rng.int(10));
  const per = batch / k;
  return Array.from({ length: k }, (_, i) => ({
    tokens: tokens.slice(i * per * 98, (i + 1) * per * 98),
    labels: labels.slice(i * per, (i + 1) * per),
    batch: per,
    step,
  }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [mode = 'threads', batchArg = '64', stepsArg = '6', widthArg = '256'] = process.argv.slice(2);
  const batch = Number(batchArg);
  const steps = Number(stepsArg);
  const width = Number(widthArg);
  const warmup = 1;
  await initBackend('wasm', { threads: mode === 'threads' ? 2 : 1 });
  const inline = mode === 'threads' ? createGradTask({ width }) : null;
  const pool = mode === 'pool' ? await GradPool.start<{ width: number }, TokenShard>({ workers: 2, module: new URL(import.meta.url), init: { width }, backend: 'wasm' }) : null;
  let weights = [...createGenerator(generatorConfig(width), 0).params.vars.values()].map((v) => v.dataSync() as Float32Array);
  const ms: number[] = [];
  const cpu: number[] = [];
  let loss = 0;
  for (let step = 0; step < warmup + steps; step++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const replies: GradResult[] = pool
      ? await pool.run(weights, shards(batch, 2, step))
      : [{ ...(await inline!.computeGrads(weights, shards(batch, 1, step)[0]!)), computeMs: 0 }];
    const mean = meanGrads(replies);
    loss = mean.loss;
    weights = weights.map((w, p) => w.map((v, j) => v - 1e-3 * mean.grads[p]![j]!));
    const c = process.cpuUsage(c0);
    if (step >= warmup) {
      ms.push(performance.now() - t0);
      cpu.push((c.user + c.system) / 1000);
    }
  }
  await pool?.close();
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const r = (v: number) => Math.round(v);
  console.log(JSON.stringify({ mode, batch, width, steps, msPerStep: r(median(ms)), cpuMsPerStep: r(median(cpu)), tokensPerSecond: r((batch * 49 * 1000) / median(ms)), loss, loadavg: os.loadavg()[0] }));
}
