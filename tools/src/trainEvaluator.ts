/**
 * One-off trainer of the committed evaluation feature net (pretrained/evaluator/fashion-mnist/). Not needed at run or
 * test time: the result is committed. Usage (wasm, one core):
 *   npx tsx tools/src/trainEvaluator.ts --out /tmp/featnet --steps 7000            # train; float32 checkpoint
 *   npx tsx tools/src/trainEvaluator.ts --from /tmp/featnet --fid-taps 0:1 \\
 *     --compact pretrained/evaluator/fashion-mnist                                   # float16 copy that is committed
 * --compact records the train split's digest (so the CLI uses the net only for that data), the full-test-split
 * accuracy of the float16 net, and how it was trained.
 */
import { Command } from 'commander';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadDataset } from '@factorgen/io';
import { positiveInt, positiveFloat } from '@factorgen/cli/ui/flags';
import { accuracy, argmaxRows, defaultFeatureNetConfig, evaluatorConfig, extractFeatures, trainFeatureNet, trainingIdentity } from '@factorgen/eval';
import { datasetDigest, loadFeatureNet, loadFeatureNetCompact, saveFeatureNet, saveFeatureNetCompact } from '@factorgen/pipelines';
import type { FeatureNet, TrainFeatureNetOptions } from '@factorgen/eval';

const program = new Command()
  .option('--out <dir>', 'train, and write the float32 checkpoint here')
  .option('--from <dir>', 'instead of training, start from this float32 checkpoint')
  .option('--compact <dir>', 'write the float16 copy here')
  .option('--fid-taps <list>', 'tap:scale,... appended to the FID features (see FeatureNetConfig.fidTaps)', '')
  .option('--steps <n>', 'steps', positiveInt, 7000)
  .option('--batch <n>', 'batch', positiveInt, 64)
  .option('--lr <x>', 'peak lr', positiveFloat, 3e-3)
  .option('--seed <n>', 'seed', positiveInt, 1)
  .option('--log-every <n>', 'log every n steps', positiveInt, 100)
  .parse();
const f = program.opts<{ out?: string; from?: string; compact?: string; fidTaps: string; steps: number; batch: number; lr: number; seed: number; logEvery: number }>();
if (!f.out === !f.from) throw new Error('give exactly one of --out (train) and --from (convert)');

await initBackend('wasm');
const train = await loadDataset({ name: 'fashion-mnist', split: 'train' });
const test = await loadDataset({ name: 'fashion-mnist', split: 'test' });
const testAccuracy = async (net: FeatureNet) => accuracy(argmaxRows((await extractFeatures(net, test)).logits, test.n, net.cfg.classes), test.labels);

let net: FeatureNet;
let training: object;
let trainSeconds: number;
if (f.out) {
  const opts: TrainFeatureNetOptions = {
    steps: f.steps, batch: f.batch, lr: f.lr, seed: f.seed, config: evaluatorConfig(defaultFeatureNetConfig(train)),
    onStep: (s) => {
      if (s.step % f.logEvery === 0 || s.step === f.steps) {
        process.stderr.write(`step ${s.step} loss ${s.loss.toFixed(4)} acc ${s.accuracy.toFixed(3)} lr ${s.lr.toExponential(2)} ${s.seconds.toFixed(0)} s\n`);
      }
    },
  };
  const t0 = performance.now();
  net = await trainFeatureNet(train, opts);
  trainSeconds = (performance.now() - t0) / 1000;
  const { onStep: _drop, ...identity } = opts;
  training = trainingIdentity(train, identity);
  await saveFeatureNet(net, f.out, { training, trainSeconds });
  process.stderr.write(`float32: test accuracy ${(100 * (await testAccuracy(net))).toFixed(2)} % after ${trainSeconds.toFixed(0)} s\n`);
} else {
  const loaded = await loadFeatureNet(f.from!);
  net = loaded;
  trainSeconds = loaded.trainSeconds;
  training = { from: f.from };
}
if (f.compact) {
  const taps = f.fidTaps ? f.fidTaps.split(',').map((t) => ({ tap: Number(t.split(':')[0]), scale: Number(t.split(':')[1]) })) : [];
  const cfg = { ...net.cfg, ...(taps.length > 0 ? { fidTaps: taps } : {}) };
  // Accuracy measured on the float16 weights, i.e. on exactly what is committed.
  await saveFeatureNetCompact({ cfg, store: net.store }, f.compact, { training, trainSeconds, datasetDigest: datasetDigest(train) });
  const half = loadFeatureNetCompact(f.compact);
  const acc = await testAccuracy(half);
  await saveFeatureNetCompact(half, f.compact, { training, trainSeconds, datasetDigest: datasetDigest(train), testAccuracy: acc, testSplit: test.n });
  process.stderr.write(`float16 copy in ${f.compact}: test accuracy ${(100 * acc).toFixed(2)} % on ${test.n} images\n`);
}
