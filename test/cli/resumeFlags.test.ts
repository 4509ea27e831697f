/**
 * The --resume table: every flag of every training command is either checked against the checkpoint or listed as one
 * that may change; a contradiction is one line naming each flag and both values; a flag left out takes the run's value.
 */
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { applyResumeTable, type CheckpointRecord, type ResumeTable } from '@factorgen/cli/ui/resumeFlags';
import { UserError } from '@factorgen/tfjs-ext';
import { buildProgram } from '@factorgen/cli/program';
import { generatorResumeTable, resumeNotRecorded, teacherResumeTable, tokenizerResumeTable } from '@factorgen/cli/commands/resume';

/** The `<group> train` command of a fresh program, with its action replaced by a no-op (parsing only). */
async function parsed(group: string, args: string[]): Promise<Command> {
  const program = buildProgram();
  const cmd = program.commands.find((c) => c.name() === group)!.commands.find((c) => c.name() === 'train')!;
  cmd.action(() => {});
  // Without --resume: its preAction hook would read the run's checkpoint (tested through the CLI); here
  // applyResumeTable is called on a record directly.
  await program.parseAsync([group, 'train', ...args.filter((a) => a !== '--resume')], { from: 'user' });
  return cmd;
}

const tables: [string, ResumeTable, string[]][] = [
  ['tokenizer', tokenizerResumeTable, []],
  ['generator', generatorResumeTable, ['--tokens', 't']],
  ['teacher', teacherResumeTable, []],
];

describe('the --resume table', () => {
  it.each(tables)('classifies every flag of `%s train` (checked against the checkpoint, or may change / not a setting)', async (group, table, required) => {
    const cmd = await parsed(group, ['--out', 'x', ...required]);
    const unclassified = cmd.options.map((o) => o.long!).filter((f) => !(f in table) && !resumeNotRecorded.has(f));
    expect(unclassified).toEqual([]);
  });

  const ck: CheckpointRecord = {
    kind: 'generator',
    step: 2,
    config: { width: 16, depth: 1, heads: 2, mlpHidden: 48, headMode: 'ar', headLayers: 1, dropout: 0.1, classDropout: 0.1, rope: '2d' },
    extra: { train: { steps: 4, batch: 4, lr: 3e-3, warmup: 1, clip: 1, adamw: { weightDecay: 0.01 }, seed: 'robust', checkpointEvery: 1000, logEvery: 1, valEvery: 0, valLimit: 8 } },
  };

  it('refuses every contradicting flag in one line with both values; may-change flags pass', async () => {
    const cmd = await parsed('generator', ['--out', 'RUN', '--resume', '--tokens', 't', '--width', '32', '--head-mode', 'parallel', '--batch', '8', '--seed', '1', '--steps', '9', '--log-every', '3']);
    let err: unknown;
    try {
      applyResumeTable(cmd, ck, generatorResumeTable, 'RUN');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe(
      '--resume: --batch 8 (trained with 4), --seed 1 (trained with robust), --width 32 (trained with 16), --head-mode parallel (trained with ar) ' +
        'contradict the run in RUN; a resumed run keeps its settings: leave these flags out, or start a new run in another folder',
    );
  });

  it('flags left out take the run\'s values, not their defaults; agreeing flags and may-change flags are accepted', async () => {
    const cmd = await parsed('generator', ['--out', 'RUN', '--resume', '--tokens', 't', '--width', '16', '--steps', '9']);
    applyResumeTable(cmd, ck, generatorResumeTable, 'RUN');
    expect(cmd.opts()).toMatchObject({ width: 16, steps: 9, batch: 4, lr: 3e-3, warmup: 1, clip: 1, weightDecay: 0.01, seed: 'robust', checkpointEvery: 1000, logEvery: 1, valEvery: 0, valLimit: 8 });
  });

  it('tokenizer: --codebook-size as one size for all or a list, --no-attention, --channels', async () => {
    const tck: CheckpointRecord = {
      kind: 'tokenizer', step: 1, extra: {},
      config: { imageSize: 8, channels: 1, attention: false, quantizer: { kind: 'fq', subCodebooks: [{ size: 16, dim: 4 }, { size: 16, dim: 4 }] } },
    };
    const agree = await parsed('tokenizer', ['--out', 'R', '--resume', '--codebook-size', '16', '--no-attention', '--channels', '1']);
    expect(() => applyResumeTable(agree, tck, tokenizerResumeTable, 'R')).not.toThrow();
    const list = await parsed('tokenizer', ['--out', 'R', '--resume', '--codebook-size', '16,16', '--sub-codebooks', '2']);
    expect(() => applyResumeTable(list, tck, tokenizerResumeTable, 'R')).not.toThrow();
    const differ = await parsed('tokenizer', ['--out', 'R', '--resume', '--codebook-size', '32', '--sub-codebooks', '3', '--channels', '3']);
    expect(() => applyResumeTable(differ, tck, tokenizerResumeTable, 'R')).toThrow(
      '--resume: --channels 3 (trained with 1), --sub-codebooks 3 (trained with 2), --codebook-size 32 (trained with 16,16) contradict the run in R;',
    );
  });
});
