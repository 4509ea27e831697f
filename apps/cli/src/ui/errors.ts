/**
 * Library errors and warnings name their inputs by field, backquoted ("`out` runs/a: already exists; pass
 * `overwrite` to replace it"); the CLI says the same in its own words, its flags ("--out runs/a: already exists;
 * pass --overwrite to replace it"). This is the one place where a field becomes a flag.
 */
import { UserError } from '@factorgen/tfjs-ext';

/** The flag of each field the library names: the field in kebab case, except where the flag is spelled otherwise. */
const FLAG_OF_FIELD: Record<string, string> = {
  alignTarget: '--align-target',
  backend: '--backend',
  batch: '--batch',
  cfgScale: '--cfg', // SampleRequest.cfgScale is given as --cfg
  classDropout: '--class-dropout',
  classes: '--classes',
  data: '--data',
  dataset: '--dataset',
  ema: '--ema',
  kind: '--kind',
  force: '--force',
  from: '--from',
  limit: '--limit',
  out: '--out',
  overwrite: '--overwrite',
  perClass: '--per-class',
  resume: '--resume',
  samples: '--samples',
  split: '--split',
  steps: '--steps',
  teacher: '--teacher',
  threads: '--threads',
  to: '--to',
  tokenizer: '--tokenizer',
  tokens: '--tokens',
  trainLimit: '--train-limit',
  val: '--val',
};

/** The flag that gives `field` ('perClass' -> '--per-class'); undefined for a field no flag gives. */
export function flagOf(field: string): string | undefined {
  return FLAG_OF_FIELD[field];
}

/** `text` with every backquoted field a flag gives replaced by that flag; other backquoted words stay as they are. */
export function inFlagWords(text: string): string {
  return text.replace(/`([A-Za-z][A-Za-z0-9]*)`/g, (whole, field: string) => flagOf(field) ?? whole);
}

/** A library error as the CLI prints it: the same error with its fields said as flags. */
export function cliError(e: UserError): UserError {
  const said = inFlagWords(e.message);
  return said === e.message ? e : new UserError(said, e.exitCode);
}
