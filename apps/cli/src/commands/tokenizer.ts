import * as path from 'node:path';
import { Command, Option } from 'commander';
import { positiveInt, intInRange, nonNegativeInt, nonNegativeFloat, positiveFloat, intList, emaDecay } from '../ui/flags';
import { nameFlagOf } from '@factorgen/io';
import { UserError } from '@factorgen/tfjs-ext';
import { defaultAdamW } from '@factorgen/nn';
import { presetFashion, assertValidConfig, type TokenizerConfig, applyPreset as applyTokenizerPreset, parseAlignTargets, TOKENIZER_PRESETS } from '@factorgen/tokenizer';
import { trainTokenizer, loadFrozenTeacher, reconstructSplit, encodeToTokenFile, decodeTokenFile, parseSplit } from '@factorgen/pipelines';
import { fillFlagsOnResume, tokenizerResumeTable } from './resume';
import { addDataOptions, addTrainOptions, backendOption, threadsOption, loadSplit, dataSource, startBackend, note, libraryNote, printJson, type DataFlags, type TrainFlags } from './common';

type Run = { backend: 'auto'; threads: number | 'auto' };
import { makeFolders, pendingOutputFile } from '@factorgen/io';
import { withTrainingUi } from '../ui/training';

type TokTrainFlags = DataFlags & TrainFlags & {
  quantizer: 'vq' | 'fq'; subCodebooks: number; codebookSize: number[]; codeDim: number; baseChannels: number; channelMult: number[];
  blocks: number; attention: boolean; latentChannels: number; beta: number; entropyWeight: number; disentangleWeight?: number;
  perceptualWeight: number; alignWeight: number; alignSubCodebook?: number; teacher?: string; adversarialWeight: number;
  adversarialStart: number; usageWindow: number; restartDeadEvery: number; flip: boolean;
  factorize?: 'projection' | 'branch'; branchBlocks: number; disentangleOn: 'quantized' | 'pre'; entropyTemperature: number;
  alignTarget: string[]; alignTargetWeight: number; alignLayers: number; alignHeads: number; ema: number; preset?: 'fqgan'; quantProj: 'linear' | 'attn';
  attnProjAttention: 'causal' | 'bidirectional';
};

// Pure: they live in the tokenizer package with the presets (presets.json); here for the CLI's callers.
export { parseAlignTargets };

/** --preset fqgan on the flags of `tokenizer train` (the tokenizer package's applyPreset; values from its presets.json). */
export function applyPreset(f: TokTrainFlags, isDefault: (flag: keyof TokTrainFlags) => boolean): TokTrainFlags {
  return applyTokenizerPreset(f, isDefault);
}

/** Builds the model config from flags (the dataset fixes image size and channels). */
export function tokenizerConfigFromFlags(f: TokTrainFlags, imageSize: number, channels: 1 | 3, teacherDim?: number, targetDims: number[] = []): TokenizerConfig {
  const K = f.quantizer === 'vq' ? 1 : f.subCodebooks;
  if (f.quantizer === 'vq' && f.subCodebooks !== 1 && f.subCodebooks !== 2) {
    throw new UserError(`--sub-codebooks ${f.subCodebooks}: --quantizer vq has exactly one codebook`);
  }
  const sizes = f.codebookSize.length === 1 ? Array(K).fill(f.codebookSize[0]) : f.codebookSize;
  if (sizes.length !== K) throw new UserError(`--codebook-size: ${sizes.length} sizes given for ${K} sub-codebooks`);
  // Checked here so the message names the flag (the preset below would name itself).
  if (sizes.some((v) => v < 2)) throw new UserError(`--codebook-size ${f.codebookSize.join(',')}: every sub-codebook needs at least 2 codes`);
  // UniTok's attention projection is a quantizer kind of its own (the registry's 'unitok')
  const kind = f.quantProj === 'attn' ? 'unitok' : f.quantizer;
  const base = presetFashion(kind, K, sizes[0]);
  const cfg: TokenizerConfig = {
    ...base,
    imageSize,
    channels,
    baseChannels: f.baseChannels,
    channelMult: f.channelMult,
    blocksPerLevel: f.blocks,
    attention: f.attention,
    latentChannels: f.latentChannels,
    quantizer: {
      ...base.quantizer,
      subCodebooks: sizes.map((size) => ({ size, dim: f.codeDim })),
      beta: f.beta,
      entropyWeight: f.entropyWeight,
      entropyTemperature: f.entropyTemperature,
      entropyLogits: 'sq-dist',
      disentangleWeight: f.disentangleWeight ?? (K >= 2 ? 0.1 : 0),
      disentangleOn: f.disentangleOn,
      ...(kind === 'unitok' ? { attention: f.attnProjAttention } : {}),
    },
    factorize: f.factorize ?? (f.quantizer === 'fq' ? 'branch' : 'projection'),
    branchBlocks: f.branchBlocks,
    perceptualWeight: f.teacher ? f.perceptualWeight : 0,
    adversarial: f.adversarialWeight > 0 ? { ...base.adversarial!, weight: f.adversarialWeight, startStep: f.adversarialStart } : undefined,
    align:
      f.alignWeight > 0 && teacherDim !== undefined
        ? { subCodebook: f.alignSubCodebook ?? K - 1, teacherDim, weight: f.alignWeight, temperature: 0.1 }
        : undefined,
  };
  if (f.alignWeight > 0 && !f.teacher) throw new UserError('--align-weight: alignment needs a --teacher');
  const targets = parseAlignTargets(f.alignTarget ?? [], K);
  if (targets.length > 0) {
    cfg.alignTargets = targets.map((t, i) => ({
      subCodebook: t.subCodebook, teacher: i, teacherDim: targetDims[i], weight: f.alignTargetWeight, layers: f.alignLayers, heads: f.alignHeads,
    }));
  }
  assertValidConfig(cfg, 'tokenizer flags');
  return cfg;
}

export function registerTokenizer(program: Command): void {
  const tok = program.command('tokenizer').description('train and use factorized (fq) or single-codebook (vq) tokenizers');

  const train = tok.command('train').description('train a tokenizer on an image dataset');
  addDataOptions(train);
  // every default from the tokenizer's presets.json: the fashion model preset (m, q) and the CLI's own values (d)
  const { fashion: m, quantizer: q, cli: d } = TOKENIZER_PRESETS;
  addTrainOptions(train, { steps: d.steps, batch: d.batch, lr: d.lr, warmup: d.warmup });
  fillFlagsOnResume(train, tokenizerResumeTable);
  train
    .addOption(new Option('--quantizer <kind>', 'vq: one codebook; fq: K independent sub-codebooks').choices(['vq', 'fq']).default(d.quantizer))
    .option('--sub-codebooks <K>', 'number of sub-codebooks for fq (1..8)', intInRange(1, 8), d.subCodebooks)
    .option('--codebook-size <V>', 'codes per sub-codebook: one size for all, or a comma list', intList, d.codebookSize)
    .option('--code-dim <d>', 'dimension of each sub-codebook (cosine matched)', positiveInt, m.codeDim)
    .option('--base-channels <n>', 'encoder/decoder width at full resolution', positiveInt, m.baseChannels)
    .option('--channel-mult <list>', 'width multipliers per level; downsampling 2^(levels-1)', intList, m.channelMult)
    .option('--blocks <n>', 'ResBlocks per level', positiveInt, m.blocksPerLevel)
    .option('--no-attention', 'no self-attention at the lowest resolution')
    .option('--latent-channels <n>', 'latent channels before the quantizer projections', positiveInt, m.latentChannels)
    .option('--beta <x>', 'commitment weight', nonNegativeFloat, q.beta)
    .option('--entropy-weight <x>', 'codebook usage (entropy) loss weight', nonNegativeFloat, q.entropyWeight)
    .option('--entropy-temperature <T>', "entropy loss temperature on -||z-c||^2 logits, as FQGAN's (0.02 = 0.01 on cosine)", positiveFloat, q.entropyTemperature)
    .addOption(new Option('--factorize <how>', 'branch: a shared trunk, then one encoder branch per sub-codebook (FQGAN; default for fq); projection: 1x1 projections of one latent (default for vq)').choices(['branch', 'projection']))
    .option('--branch-blocks <n>', 'adapter blocks (ResBlock + attention) per branch with --factorize branch', nonNegativeInt, m.branchBlocks)
    .addOption(new Option('--disentangle-on <codes>', 'disentanglement on the straight-through quantized codes (FQGAN) or the pre-quantization codes').choices(['quantized', 'pre']).default(q.disentangleOn))
    .option('--disentangle-weight <x>', 'disentanglement loss weight (default 0.1 when K >= 2)', nonNegativeFloat)
    .option('--teacher <dir>', 'frozen teacher: a `factorgen teacher train` run or a tfjs LayersModel/GraphModel folder')
    .option('--perceptual-weight <x>', 'teacher-feature perceptual loss weight (needs --teacher)', nonNegativeFloat, m.perceptualWeight)
    .option('--align-weight <x>', "ours, not FQGAN's (FQGAN's is --align-target): align one sub-codebook to the --teacher embedding by a mean-pooled MLP and symmetric InfoNCE", nonNegativeFloat, d.alignWeight)
    .option('--align-sub-codebook <k>', 'with --align-weight: which sub-codebook to align (default the last)', nonNegativeInt)
    .option('--align-target <k:dir>', "FQGAN alignment: sub-codebook k's class-token head is matched to this teacher's embedding (repeat for FQGAN-Triple)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--align-target-weight <x>', 'weight of each --align-target InfoNCE (FQGAN: 0.5)', nonNegativeFloat, d.alignTargetWeight)
    .option('--align-layers <n>', 'transformer blocks in each --align-target head (FQGAN: 3)', nonNegativeInt, d.alignLayers)
    .option('--align-heads <n>', 'attention heads in each --align-target head', positiveInt, d.alignHeads)
    .option('--adversarial-weight <x>', 'PatchGAN hinge loss weight (0 = off)', nonNegativeFloat, d.adversarialWeight)
    .option('--adversarial-start <step>', 'step at which the adversarial loss starts', nonNegativeInt, d.adversarialStart)
    .option('--usage-window <n>', 'codebook usage is measured over the last n batches', positiveInt, d.usageWindow)
    .option('--restart-dead-every <n>', 'move codes unused over the window onto current encoder outputs every n steps (0 = never)', nonNegativeInt, d.restartDeadEvery)
    .option('--ema <decay>', 'keep an EMA of the weights with this decay (0 = none); it averages over about 1/(1 - decay) steps, so keep that a tenth of the run or less: 0.995 for 2000-3000 steps, 0.999 from 10000; new runs warm it up as min(decay, (1+n)/(10+n)) at step n; encoding, decoding and export use it', emaDecay, d.ema)
    .option('--flip', 'random horizontal flips', false)
    .addOption(new Option('--preset <name>', "fqgan: for each of these flags not given, FQGAN's value at this scale: --quantizer fq --sub-codebooks 2 --factorize branch --code-dim 8 --beta 0.25 --entropy-weight 0.03 --entropy-temperature 0.01 --disentangle-weight 0.1 --disentangle-on quantized --restart-dead-every 0 --perceptual-weight 1 --align-target 1:<--teacher> --align-target-weight 0.5 --adversarial-weight 0.5 --adversarial-start <10% of --steps> --ema 0.995 (needs --teacher). FQGAN restarts no dead codes; ours, not FQGAN's: --ema 0.995 and a 1-block alignment head (FQGAN: 3)").choices(['fqgan']))
    .addOption(new Option('--quant-proj <kind>', "projections around the quantizer: linear 1x1 convs, or UniTok's attention projection (attn)").choices(['linear', 'attn']).default(d.quantProj))
    .addOption(new Option('--attn-proj-attention <kind>', "with --quant-proj attn: attention over all positions (UniTok since April 2025) or causal over raster order (UniTok's first release)").choices(['bidirectional', 'causal']).default(q.attention))
    .action(async (_flags: TokTrainFlags, cmd: Command) => {
      // On --resume the checkpoint's settings filled the flags left out (fillFlagsOnResume); a preset only fills a new run's.
      const f = applyPreset(cmd.opts<TokTrainFlags>(), (k) => cmd.getOptionValueSource(k) !== 'cli');
      await startBackend(f.backend, f.threads);
      const data = await loadSplit(f, 'train');
      const teacher = f.teacher ? await loadFrozenTeacher(f.teacher) : undefined;
      const targetSpecs = parseAlignTargets(f.alignTarget, f.quantizer === 'vq' ? 1 : f.subCodebooks);
      // One load per folder: the same teacher may serve the perceptual loss and several targets.
      const loaded = new Map<string, Awaited<ReturnType<typeof loadFrozenTeacher>>>();
      if (f.teacher && teacher) loaded.set(path.resolve(f.teacher), teacher);
      const teachers: Awaited<ReturnType<typeof loadFrozenTeacher>>[] = [];
      for (const t of targetSpecs) {
        const key = path.resolve(t.dir);
        if (!loaded.has(key)) {
          // Its failures name --align-target (runCli names only flags whose whole value is the path).
          const teacherOf = await loadFrozenTeacher(t.dir).catch((e: unknown) => {
            throw e instanceof UserError ? new UserError(nameFlagOf(e.message, ['--align-target', t.dir]), e.exitCode) : e;
          });
          loaded.set(key, teacherOf);
        }
        teachers.push(loaded.get(key)!);
      }
      const config = tokenizerConfigFromFlags(f, data.height, data.channels, teacher?.embedDim, teachers.map((t) => t.embedDim));
      const result = await withTrainingUi((ui) => trainTokenizer({
        ...ui,
        out: f.out,
        resume: f.resume, overwrite: f.overwrite,
        config,
        data,
        teacher,
        teachers,
        train: {
          steps: f.steps, batch: f.batch, lr: f.lr, warmup: f.warmup, minLrRatio: 0.1, clip: f.clip,
          adamw: { ...defaultAdamW, weightDecay: f.weightDecay }, seed: f.seed, flip: f.flip,
          checkpointEvery: f.checkpointEvery, logEvery: f.logEvery, usageWindow: f.usageWindow, restartDeadEvery: f.restartDeadEvery, ema: f.ema,
        },
      }));
      note(`tokenizer saved to ${result.checkpointDir} (${result.itemsPerSecond.toFixed(1)} images/s)`);
      printJson({ checkpoint: result.checkpointDir, steps: result.stepsDone, imagesPerSecond: result.itemsPerSecond, usage: result.usage, perplexity: result.perplexity, last: result.last });
    });

  const recon = tok.command('reconstruct').description('PNG grid of originals over reconstructions; PSNR and SSIM on a split as JSON');
  addDataOptions(recon);
  recon
    .requiredOption('--tokenizer <dir>', 'tokenizer run or checkpoint folder')
    .option('--split <name>', 'train or test', 'test')
    .option('--limit <n>', 'score the first n images of the split', positiveInt, 10000)
    .option('--grid <n>', 'images in the PNG grid', positiveInt, 16)
    .option('--out <dir>', 'folder for recon.png and metrics.json', 'out/reconstruct')
    .option('--batch <n>', 'batch size', positiveInt, 100)
    .option('--overwrite', 'replace an earlier reconstruction in --out (only the files factorgen wrote there)', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & Run & { tokenizer: string; split: string; limit: number; grid: number; out: string; batch: number; overwrite: boolean }) => {
      await startBackend(f.backend, f.threads);
      const { tokenizer, limit, grid, out, batch, overwrite } = f;
      printJson(await reconstructSplit({ tokenizer, data: dataSource(f), split: parseSplit(f.split), limit, grid, out, batch, overwrite, note: libraryNote }));
    });

  const encode = tok.command('encode').description('tokenize a dataset split into a token file (format in docs/formats.md)');
  addDataOptions(encode);
  encode
    .requiredOption('--tokenizer <dir>', 'tokenizer run or checkpoint folder')
    .requiredOption('--out <file>', 'token file to write')
    .option('--split <name>', 'train or test', 'train')
    .option('--limit <n>', 'encode only the first n images', positiveInt)
    .option('--batch <n>', 'batch size', positiveInt, 200)
    .option('--overwrite', 'replace an existing token file at --out (only a token file)', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: DataFlags & Run & { tokenizer: string; out: string; split: string; limit?: number; batch: number; overwrite: boolean }) => {
      await startBackend(f.backend, f.threads);
      const { tokenizer, out, limit, batch, overwrite } = f;
      const r = await encodeToTokenFile({ tokenizer, out, data: dataSource(f), split: parseSplit(f.split), limit, batch, overwrite, note: libraryNote });
      note(`wrote ${r.images} token maps (${r.grid[0]}x${r.grid[1]}x${r.subCodebookSizes.length}) to ${r.out} in ${r.seconds.toFixed(1)} s`);
      printJson({ out: r.out, images: r.images, grid: r.grid, subCodebookSizes: r.subCodebookSizes, tokenizerId: r.tokenizerId, imagesPerSecond: r.imagesPerSecond });
    });

  const decode = tok.command('decode').description('decode a token file to PNGs');
  decode
    .requiredOption('--tokens <file>', 'token file written by `tokenizer encode`')
    .option('--tokenizer <dir>', 'tokenizer folder (default: the one recorded in the token file)')
    .requiredOption('--out <dir>', 'folder for <index>-<slug>/NNNN.png')
    .option('--limit <n>', 'decode only the first n records', positiveInt)
    .option('--batch <n>', 'batch size', positiveInt, 200)
    .option('--overwrite', 'replace earlier decoded images in --out (only the files factorgen wrote there)', false)
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (f: Run & { tokens: string; tokenizer?: string; out: string; limit?: number; batch: number; overwrite: boolean }) => {
      await startBackend(f.backend, f.threads);
      printJson(await decodeTokenFile({ tokens: f.tokens, tokenizer: f.tokenizer, out: f.out, limit: f.limit, batch: f.batch, overwrite: f.overwrite }));
    });
}
