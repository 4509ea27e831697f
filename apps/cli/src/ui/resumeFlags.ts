/**
 * --resume continues a run exactly as it was trained: a flag the user gives must agree with what the checkpoint
 * recorded, and a flag left out takes the recorded value (not the flag's default). One table per training command
 * maps each flag to where its checkpoint keeps it; flags that may change on resume are listed as such, and a test
 * checks that every flag of every training command is in one of the two (so a new flag is classified by one line).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '@factorgen/tfjs-ext';
import { hasCheckpoint, loadCheckpoint } from '@factorgen/io';
import { type LoadedCheckpoint } from '@factorgen/formats';

/** What --resume reads: the checkpoint's config and extra (its config.json). */
export type CheckpointRecord = Pick<LoadedCheckpoint, 'kind' | 'config' | 'extra' | 'step'>;

/** Where a checkpoint keeps one flag's value; undefined: not recorded (older checkpoints), then not checked. */
export type ResumeField = {
  stored: (ck: CheckpointRecord) => unknown;
  /** Whether the flag's parsed value agrees with the stored one (default: equal as JSON). */
  same?: (given: unknown, stored: unknown) => boolean;
};

/** flag (its long name, e.g. '--width') -> where the checkpoint keeps it. */
export type ResumeTable = Record<string, ResumeField>;

const record = (ck: CheckpointRecord, key: string): Record<string, unknown> => {
  const v = ck.extra?.[key];
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
};

/** A model-config field: `cfg('width')`. */
export const cfgField = (...keys: string[]): ResumeField => ({
  stored: (ck) => keys.reduce<unknown>((o, k) => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined), ck.config),
});

/** A training setting recorded in extra.train: `trainField('adamw', 'weightDecay')`. */
export const trainField = (...keys: string[]): ResumeField => ({
  stored: (ck) => keys.reduce<unknown>((o, k) => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined), record(ck, 'train')),
});

/** The settings every trainer records in extra.train. */
export const commonTrainFields: ResumeTable = {
  '--batch': trainField('batch'),
  '--lr': trainField('lr'),
  '--warmup': trainField('warmup'),
  '--weight-decay': trainField('adamw', 'weightDecay'),
  '--clip': trainField('clip'),
  '--seed': trainField('seed'),
};

const show = (v: unknown): string => (Array.isArray(v) ? v.join(',') : typeof v === 'string' ? v : JSON.stringify(v));

/**
 * Reads the checkpoint of run folder `out` for --resume: config.json, or (after a save interrupted between its two
 * renames) the checkpoint loadCheckpoint falls back to. null when there is none (the trainer then says so).
 */
export async function readCheckpointRecord(out: string): Promise<CheckpointRecord | null> {
  const dir = path.join(out, 'checkpoint');
  if (!hasCheckpoint(dir)) return null;
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) return loadCheckpoint(dir);
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointRecord;
    return { kind: j.kind, config: j.config ?? {}, extra: j.extra, step: j.step };
  } catch {
    return loadCheckpoint(dir); // names the problem in one line
  }
}

/**
 * On --resume: refuses every flag given on the command line whose value contradicts the checkpoint (one line naming
 * each flag with both values), and sets the flags left out to the stored values (not their defaults, which could
 * contradict the run), so `cmd.opts()` describes the run as it was trained. Flags absent from the table are not touched.
 */
export function applyResumeTable(cmd: Command, ck: CheckpointRecord, table: ResumeTable, runDir: string): void {
  const opts = cmd.opts() as Record<string, unknown>;
  const contradictions: string[] = [];
  for (const opt of cmd.options) {
    const flag = opt.long;
    const field = flag ? table[flag] : undefined;
    if (!flag || !field) continue;
    const key = opt.attributeName();
    const stored = field.stored(ck);
    if (stored === undefined) continue;
    const given = cmd.getOptionValueSource(key) === 'cli';
    if (given) {
      const same = field.same ? field.same(opts[key], stored) : JSON.stringify(opts[key]) === JSON.stringify(stored);
      if (!same) contradictions.push(`${flag} ${show(opts[key])} (trained with ${show(stored)})`);
    } else {
      cmd.setOptionValueWithSource(key, stored, 'default');
    }
  }
  if (contradictions.length > 0) {
    throw new UserError(
      `--resume: ${contradictions.join(', ')} ${contradictions.length === 1 ? 'contradicts' : 'contradict'} the run in ${runDir}; ` +
        'a resumed run keeps its settings: leave these flags out, or start a new run in another folder',
    );
  }
}
