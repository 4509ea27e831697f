import { Command, Option } from 'commander';
import { positiveInt, intInRange, nonNegativeInt, probability, positiveFloat, nonNegativeFloat, emaDecay } from '../ui/flags';
import { defaultAdamW } from '@factorgen/nn';
import { UserError } from '@factorgen/tfjs-ext';
import { Progress } from '../ui/progress';
import { readTokenFile } from '@factorgen/io';
import { trainGenerator, sampleToFolder } from '@factorgen/pipelines';
import { GENERATOR_PRESETS, makeGeneratorConfig } from '@factorgen/generator';
import { fillFlagsOnResume, generatorResumeTable } from './resume';
import { addTrainOptions, backendOption, threadsOption, startBackend, note, libraryNote, printJson, type TrainFlags } from './common';
import { withTrainingUi } from '../ui/training';

type GenTrainFlags = TrainFlags & {
  tokens: string; val?: string; width: number; depth: number; heads: number; mlpHidden?: number; headMode: 'ar' | 'parallel';
  headLayers: number; dropout: number; classDropout: number; rope: '1d' | '2d'; classRope: 'identity' | 'zero'; valEvery: number; valLimit: number; ema: number;
};

export function registerGenerator(program: Command): void {
  const gen = program.command('generator').description('train the factorized autoregressive generator on token files');
  const train = gen.command('train').description('train a class-conditional AR transformer on a token file');
  // weight decay 0.05 as LlamaGen's and FAR's trainers (a 150-step paired run could not tell 0 from 0.05: README method notes)
  // every default from the generator's presets.json (its cli preset)
  const d = GENERATOR_PRESETS.cli;
  addTrainOptions(train, { steps: d.steps, batch: d.batch, lr: d.lr, warmup: d.warmup, weightDecay: d.weightDecay });
  fillFlagsOnResume(train, generatorResumeTable);
  train
    .requiredOption('--tokens <file>', 'training token file (from `factorgen tokenizer encode`)')
    .option('--val <file>', 'held-out token file for the validation loss')
    .option('--width <n>', 'transformer width', positiveInt, d.width)
    .option('--depth <n>', 'transformer blocks', positiveInt, d.depth)
    .option('--heads <n>', 'attention heads', positiveInt, d.heads)
    .option('--mlp-hidden <n>', 'SwiGLU hidden size (default 3 x width)', positiveInt)
    .addOption(new Option('--head-mode <mode>', 'ar: factorized AR head over sub-tokens; parallel: K independent heads').choices(['ar', 'parallel']).default(d.headMode))
    .option('--head-layers <n>', 'layers of the AR head (1..4; 3 as FAR-L, and the best of 1-3 in a short paired run)', intInRange(1, 4), d.headLayers)
    .option('--dropout <p>', 'dropout', probability, d.dropout)
    .option('--class-dropout <p>', 'probability a label is replaced by the null class (for guidance)', probability, d.classDropout)
    .addOption(new Option('--rope <kind>', 'rotary position embedding over the token grid').choices(['1d', '2d']).default(d.rope))
    .addOption(new Option('--class-rope <kind>', "the class token's rotary embedding: identity (unrotated; lower validation loss in a short paired run) or zero (cos = sin = 0, as LlamaGen's and FAR's code)").choices(['identity', 'zero']).default(d.classRope))
    .option('--val-every <n>', 'validation loss every n steps (0 = at the end only)', nonNegativeInt, d.valEvery)
    .option('--val-limit <n>', 'score at most n held-out sequences', positiveInt, d.valLimit)
    .option('--ema <decay>', 'keep an EMA of the weights with this decay (0 = none); it averages over about 1/(1 - decay) steps, so keep that a tenth of the run or less: 0.995 for 2000-3000 steps, 0.999 from 10000; new runs warm it up as min(decay, (1+n)/(10+n)) at step n; sampling and export use it', emaDecay, d.ema)
    .action(async (_flags: GenTrainFlags, cmd: Command) => {
      const f = cmd.opts<GenTrainFlags>(); // on --resume, filled from the run (fillFlagsOnResume)
      await startBackend(f.backend, f.threads);
      const tokens = readTokenFile(f.tokens);
      const val = f.val ? readTokenFile(f.val) : undefined;
      const h = tokens.header;
      // A class with no sequences is trained as a label that never appears: sampling it gives noise. Say so.
      const without = h.classNames.filter((_, c) => !tokens.labels.includes(c));
      if (without.length > 0) {
        note(`warning: --tokens ${f.tokens}: no sequences of ${without.length} of ${h.classNames.length} classes (${without.slice(0, 5).join(', ')}${without.length > 5 ? ', …' : ''}); samples of ${without.length > 1 ? 'these classes' : 'this class'} will be noise`);
      }
      const heads = f.heads;
      if (f.width % heads !== 0) throw new UserError(`--heads ${heads}: must divide --width ${f.width}`);
      const config = makeGeneratorConfig({
        gridH: h.gridH, gridW: h.gridW, subCodebookSizes: h.subCodebookSizes, numClasses: h.classNames.length,
        width: f.width, depth: f.depth, heads, mlpHidden: f.mlpHidden ?? d.mlpHiddenPerWidth * f.width, headMode: f.headMode,
        headLayers: f.headLayers, headWidth: f.width, headHeads: heads, headMlpHidden: f.mlpHidden ?? d.mlpHiddenPerWidth * f.width,
        dropout: f.dropout, rope: f.rope, classDropout: f.classDropout, classRope: f.classRope,
      });
      const result = await withTrainingUi((ui) => trainGenerator({
        ...ui,
        out: f.out, resume: f.resume, overwrite: f.overwrite, config, tokens, tokensPath: f.tokens, val,
        train: {
          steps: f.steps, batch: f.batch, lr: f.lr, warmup: f.warmup, minLrRatio: 0.1, clip: f.clip,
          adamw: { ...defaultAdamW, weightDecay: f.weightDecay }, seed: f.seed, checkpointEvery: f.checkpointEvery,
          logEvery: f.logEvery, valEvery: f.valEvery, valLimit: f.valLimit, ema: f.ema,
        },
      }));
      note(`generator saved to ${result.checkpointDir} (${result.itemsPerSecond.toFixed(0)} tokens/s)`);
      printJson({ checkpoint: result.checkpointDir, steps: result.stepsDone, tokensPerSecond: result.itemsPerSecond, valLoss: result.valLoss, last: result.last });
    });
}

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description('sample class-conditional images: OUT/<index>-<slug>/NNNN.png, OUT/grid.png, OUT/samples.json')
    .requiredOption('--generator <dir>', 'generator run or checkpoint folder')
    .option('--tokenizer <dir>', 'tokenizer folder (default: the one the generator was trained with)')
    .option('--out <dir>', 'output folder', 'out/samples')
    .option('--classes <list>', 'class indices or names, comma separated, or "all"', 'all')
    .option('--per-class <n>', 'images per class', positiveInt, 8)
    .option('--cfg <scale>', 'classifier-free guidance scale (1 = conditional only)', nonNegativeFloat, 2)
    .option('--temperature <t>', 'sampling temperature (0 = greedy: always the most likely token)', nonNegativeFloat, 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', nonNegativeInt, 0)
    .option('--top-p <p>', 'nucleus sampling mass (1 = off)', probabilityPositive, 1)
    .option('--seed <s>', 'sampling seed', '0')
    .option('--batch <n>', 'images sampled at once', positiveInt, 40)
    .option('--no-cache', 'recompute the whole prefix every step (slow; for checks)')
    .option('--overwrite', 'replace an earlier sample run in --out (only the files factorgen wrote there)', false)
    .option('--force', 'guide (--cfg other than 1) a generator trained with --class-dropout 0', false)
    .option('--scale <n>', 'grid.png: draw each image n times its size (default: cells of at least 84 px, 3 for 28-px images)', positiveInt)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: {
      generator: string; tokenizer?: string; out: string; classes: string; perClass: number; cfg: number; temperature: number;
      topK: number; topP: number; seed: string; batch: number; cache: boolean; overwrite: boolean; force: boolean; backend: 'auto'; threads: number | 'auto';
      scale?: number;
    }) => {
      await startBackend(f.backend, f.threads);
      let progress: Progress | undefined;
      const startedAt = performance.now();
      const r = await sampleToFolder({
        generator: f.generator, tokenizer: f.tokenizer, out: f.out, classes: f.classes, perClass: f.perClass, batch: f.batch,
        seed: f.seed, cfgScale: f.cfg, temperature: f.temperature, topK: f.topK, topP: f.topP, useCache: f.cache,
        overwrite: f.overwrite, force: f.force, warn: libraryNote, gridScale: f.scale,
        onProgress: (done, total) => {
          progress ??= new Progress(total, 'sample', { startedAt, startStep: 0, unit: 'image' });
          progress.update(done, {});
        },
      });
      progress?.done();
      note(`wrote ${r.images} sample${r.images === 1 ? '' : 's'} and ${r.grid} (${r.imagesPerSecond.toFixed(1)} images/s)`);
      printJson(r);
    });
}

function probabilityPositive(v: string): number {
  const p = probability(v);
  if (p === 0) throw new UserError(`--top-p: must be in (0, 1], got ${v}`);
  return p;
}
