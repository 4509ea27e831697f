/**
 * One-off trainer of the committed evaluation feature net (pretrained/evaluator/<dataset>/). Not needed at run or
 * test time: the result is committed. Usage (wasm, one core):
 *   npx tsx scripts/src/trainEvaluator.ts --out /tmp/featnet [--steps 6000] [--batch 64] [--lr 3e-3] [--seed 1]
 * Writes a float32 checkpoint to --out; `--compact DIR` also writes the float16 copy that is committed.
 */
import { Command } from 'commander';
import { initBackend, loadDataset, positiveInt, positiveFloat } from '@factorgen/shared';
import {
  accuracy, argmaxRows, defaultFeatureNetConfig, evaluatorConfig, extractFeatures, saveFeatureNet, saveFeatureNetCompact,
  trainFeatureNet, trainingIdentity,
} from '@factorgen/eval';
import type { TrainFeatureNetOptions } from '@factorgen/eval';

const program = new Command()
  .requiredOption('--out <dir>', 'float32 checkpoint folder')
  .option('--compact <dir>', 'also write the float16 copy here')
  .option('--steps <n>', 'steps', positiveInt, 6000)
  .option('--batch <n>', 'batch', positiveInt, 64)
  .option('--lr <x>', 'peak lr', positiveFloat, 3e-3)
  .option('--seed <n>', 'seed', positiveInt, 1)
  .option('--log-every <n>', 'log every n steps', positiveInt, 100)
  .parse();
const f = program.opts<{ out: string; compact?: string; steps: number; batch: number; lr: number; seed: number; logEvery: number }>();

await initBackend('wasm');
const train = await loadDataset({ name: 'fashion-mnist', split: 'train' });
const test = await loadDataset({ name: 'fashion-mnist', split: 'test' });
const opts: TrainFeatureNetOptions = {
  steps: f.steps, batch: f.batch, lr: f.lr, seed: f.seed, config: evaluatorConfig(defaultFeatureNetConfig(train)),
  onStep: (s) => {
    if (s.step % f.logEvery === 0 || s.step === f.steps) {
      process.stderr.write(`step ${s.step} loss ${s.loss.toFixed(4)} acc ${s.accuracy.toFixed(3)} lr ${s.lr.toExponential(2)} ${s.seconds.toFixed(0)} s\n`);
    }
  },
};
const t0 = performance.now();
const net = trainFeatureNet(train, opts);
const trainSeconds = (performance.now() - t0) / 1000;
const { logits } = extractFeatures(net, test);
const acc = accuracy(argmaxRows(logits, test.n, net.cfg.classes), test.labels);
process.stderr.write(`test accuracy ${(100 * acc).toFixed(2)} % after ${trainSeconds.toFixed(0)} s\n`);
const { onStep: _drop, ...identity } = opts;
await saveFeatureNet(net, f.out, { training: trainingIdentity(train, identity), trainSeconds });
if (f.compact) await saveFeatureNetCompact(net, f.compact, { training: trainingIdentity(train, identity), trainSeconds, testAccuracy: acc });
