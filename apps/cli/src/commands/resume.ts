/**
 * What --resume checks, per training command: each flag maps to where the checkpoint keeps it (a contradiction is
 * refused, a flag left out takes the recorded value), or is listed as one that may change on resume. A new flag is
 * added to one of the two by one line (test/cli/resumeFlags.test.ts fails until it is).
 */
import type { Command } from 'commander';
import { applyResumeTable, cfgField, commonTrainFields, readCheckpointRecord, trainField, type ResumeField, type ResumeTable } from '../ui/resumeFlags';
import { checkResumable } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { migrateTokenizerConfig, type TokenizerConfig } from '@factorgen/tokenizer';
import { migrateGeneratorConfig, type GeneratorConfig } from '@factorgen/generator';

/** A checkpoint's tokenizer config as the current version (absent fields of older ones written out; not validated). */
const tokCfg = (ck: { config: unknown }): Partial<TokenizerConfig> => migrateTokenizerConfig(ck.config) as Partial<TokenizerConfig>;
/** A checkpoint's generator config as the current version (not validated). */
const genCfg = (ck: { config: unknown }): Partial<GeneratorConfig> => migrateGeneratorConfig(ck.config) as Partial<GeneratorConfig>;

/** May change on resume: recorded for the log, taken from the flag when given, else from the checkpoint. */
const mayChange = (field: ResumeField): ResumeField => ({ ...field, same: () => true });

/** Flags that may differ on resume in every training command (the README lists them). */
export const resumeMayChange: ResumeTable = {
  // how long and how often: the schedule's length follows --steps (README: "How the shipped default was made")
  '--steps': mayChange(trainField('steps')),
  '--checkpoint-every': mayChange(trainField('checkpointEvery')),
  '--log-every': mayChange(trainField('logEvery')),
  '--val-every': mayChange(trainField('valEvery')),
  '--val-limit': mayChange(trainField('valLimit')),
};

/** Flags that are not settings of the run: where it is, how to run it, and inputs checked elsewhere. */
export const resumeNotRecorded = new Set([
  '--out', '--resume', '--overwrite',
  // resume is bit-exact on the same backend; another backend continues the run with its own rounding. --threads splits
  // the wasm kernels' work, not the run: results are bit-identical at every count (test/tfjs-ext/node/wasmThreads.test.ts).
  '--backend', '--threads',
  // inputs: the images' shape and class names, the token file's tokenizer id and class names are checked against the run
  // (--dataset and --tokens, when left out, take the run's: see the tables below)
  '--data', '--val',
  // the teacher's weights are not recorded in the tokenizer's checkpoint (its use is: --perceptual-weight, --align-weight)
  '--teacher',
  // --align-target k:DIR names teacher folders, which are not recorded; the trainer checks the given teachers against
  // the checkpoint's targets (count and embedding width) on resume
  '--align-target',
  // a preset only fills the flags of a new run; on resume every setting comes from the checkpoint
  '--preset',
]);

const sizesAgree = (given: unknown, stored: unknown): boolean => {
  const g = given as number[];
  const s = stored as number[];
  return g.length === 1 ? s.every((v) => v === g[0]) : JSON.stringify(g) === JSON.stringify(s);
};

/**
 * --dataset left out on resume: the run's (its checkpoint records the loaded set's name: "emoji", or
 * "folder:<basename>/train", whose folder --data still has to name). The images themselves are checked against the run.
 */
const datasetField: ResumeField = mayChange({
  stored: (ck) => {
    const name = (ck.extra as { dataset?: unknown } | undefined)?.dataset;
    if (typeof name !== 'string') return undefined;
    if (name.startsWith('folder:')) return 'folder';
    return name === 'fashion-mnist' || name === 'emoji' ? name : undefined;
  },
});

export const tokenizerResumeTable: ResumeTable = {
  ...commonTrainFields,
  ...resumeMayChange,
  '--dataset': datasetField,
  '--size': cfgField('imageSize'),
  '--channels': { stored: (ck) => (ck.config as { channels?: number }).channels, same: (g, s) => Number(g) === s },
  // UniTok's kind 'unitok' came from --quant-proj attn with --quantizer fq, or vq for one codebook (either, then)
  '--quantizer': {
    stored: (ck) => {
      const q = tokCfg(ck).quantizer;
      return q?.kind === 'unitok' ? (q.subCodebooks?.length === 1 ? undefined : 'fq') : q?.kind;
    },
  },
  '--sub-codebooks': { stored: (ck) => (ck.config as { quantizer?: { subCodebooks?: unknown[] } }).quantizer?.subCodebooks?.length },
  '--codebook-size': { stored: (ck) => (ck.config as { quantizer?: { subCodebooks?: { size: number }[] } }).quantizer?.subCodebooks?.map((s) => s.size), same: sizesAgree },
  '--code-dim': { stored: (ck) => (ck.config as { quantizer?: { subCodebooks?: { dim: number }[] } }).quantizer?.subCodebooks?.[0]?.dim },
  '--base-channels': cfgField('baseChannels'),
  '--channel-mult': cfgField('channelMult'),
  '--blocks': cfgField('blocksPerLevel'),
  '--no-attention': cfgField('attention'),
  '--latent-channels': cfgField('latentChannels'),
  '--beta': cfgField('quantizer', 'beta'),
  '--entropy-weight': cfgField('quantizer', 'entropyWeight'),
  '--disentangle-weight': cfgField('quantizer', 'disentangleWeight'),
  // without a teacher the perceptual loss is off whatever the flag says, so only a run that used it is compared
  '--perceptual-weight': { stored: (ck) => ((ck.config as { perceptualWeight?: number }).perceptualWeight || undefined) },
  '--align-weight': { stored: (ck) => (ck.config as { align?: { weight: number } }).align?.weight ?? 0 },
  '--align-sub-codebook': cfgField('align', 'subCodebook'),
  '--adversarial-weight': { stored: (ck) => (ck.config as { adversarial?: { weight: number } }).adversarial?.weight ?? 0 },
  '--adversarial-start': cfgField('adversarial', 'startStep'),
  '--usage-window': trainField('usageWindow'),
  '--restart-dead-every': trainField('restartDeadEvery'),
  '--flip': trainField('flip'),
  '--factorize': { stored: (ck) => tokCfg(ck).factorize },
  '--branch-blocks': { stored: (ck) => (tokCfg(ck).factorize === 'branch' ? tokCfg(ck).branchBlocks : undefined) },
  '--disentangle-on': { stored: (ck) => tokCfg(ck).quantizer?.disentangleOn },
  // in FQGAN's terms (-||z-c||^2 logits): a checkpoint with cosine logits (version 1, before entropyLogits) used half this value
  '--entropy-temperature': {
    stored: (ck) => {
      const q = tokCfg(ck).quantizer;
      return q?.entropyTemperature === undefined ? undefined : q.entropyLogits === 'sq-dist' ? q.entropyTemperature : 2 * q.entropyTemperature;
    },
  },
  '--align-target-weight': { stored: (ck) => (ck.config as { alignTargets?: { weight: number }[] }).alignTargets?.[0]?.weight },
  '--align-layers': { stored: (ck) => (ck.config as { alignTargets?: { layers: number }[] }).alignTargets?.[0]?.layers },
  '--align-heads': { stored: (ck) => (ck.config as { alignTargets?: { heads: number }[] }).alignTargets?.[0]?.heads },
  '--quant-proj': { stored: (ck) => (tokCfg(ck).quantizer?.kind === 'unitok' ? 'attn' : 'linear') },
  // only 'unitok' has an attention to set
  '--attn-proj-attention': { stored: (ck) => tokCfg(ck).quantizer?.attention },
  // runs from before --ema kept no average
  '--ema': { stored: (ck) => (ck.extra as { train?: { ema?: number } } | undefined)?.train?.ema ?? 0 },
};

export const generatorResumeTable: ResumeTable = {
  ...commonTrainFields,
  ...resumeMayChange,
  // left out on resume: the token file the run was trained on (its path as given then); another file may be given,
  // and is checked against the run (tokenizer id, class names)
  '--tokens': mayChange({ stored: (ck) => (ck.extra as { tokens?: unknown } | undefined)?.tokens }),
  '--width': cfgField('width'),
  '--depth': cfgField('depth'),
  '--heads': cfgField('heads'),
  '--mlp-hidden': cfgField('mlpHidden'),
  '--head-mode': cfgField('headMode'),
  '--head-layers': cfgField('headLayers'),
  '--dropout': cfgField('dropout'),
  '--class-dropout': cfgField('classDropout'),
  '--rope': cfgField('rope'),
  '--class-rope': { stored: (ck) => genCfg(ck).classRope },
  // runs from before --ema kept no average
  '--ema': { stored: (ck) => (ck.extra as { train?: { ema?: number } } | undefined)?.train?.ema ?? 0 },
};

export const teacherResumeTable: ResumeTable = {
  ...commonTrainFields,
  ...resumeMayChange,
  '--dataset': datasetField,
  '--size': cfgField('imageSize'),
  '--channels': { stored: (ck) => (ck.config as { channels?: number }).channels, same: (g, s) => Number(g) === s },
  '--flip': trainField('flip'),
  // teachers written before --kind are classifiers
  '--kind': { stored: (ck) => (ck.config as { kind?: string }).kind ?? 'classifier' },
};

/**
 * On --resume: refuses flags that contradict the run's checkpoint and fills the ones left out from it, so the
 * command's options describe the run as it was trained; refuses a --steps the run has already reached (nothing would
 * train). A preAction hook of `cmd`, so flags the run records (--tokens) are filled before required flags are checked
 * (program.ts). No-op without --resume.
 */
export function fillFlagsOnResume(cmd: Command, table: ResumeTable): Command {
  return cmd.hook('preAction', () => {
    const f = cmd.opts() as { resume?: boolean; overwrite?: boolean; out?: string; steps: number };
    // Synchronous without --resume, so a plain (not async) parse still reaches the action at once.
    if (!f.resume || f.out === undefined) return; // without --out, the required-flag check names it
    const out = f.out;
    checkResumable(out, f.overwrite ?? false);
    return readCheckpointRecord(out).then((ck) => {
      if (!ck) return;
      applyResumeTable(cmd, ck, table, out);
      const steps = cmd.getOptionValue('steps') as number;
      if (Number.isInteger(ck.step) && steps <= ck.step) {
        throw new UserError(`--steps ${steps}: the run in ${out} is already at step ${ck.step}; give --steps > ${ck.step} to continue`);
      }
    });
  });
}
