/**
 * metrics.jsonl: one JSON object per line, appended synchronously so a killed run keeps every line it logged.
 * Non-finite numbers are written as null (JSON has no NaN).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@factorgen/tfjs-ext';
import { describeReadError } from '@factorgen/io';
import { describeWriteError } from '@factorgen/io';
import { makeFolders } from '@factorgen/io';

export type MetricsOpenOptions = {
  /**
   * On resume from a checkpoint at step N, drop logged records with `step > N` (they were written after that
   * checkpoint by the interrupted run and will be logged again).
   */
  dropAfterStep?: number;
};

export class MetricsLog {
  /**
   * Opens `file` for appending (`append`, e.g. --resume) or starts it empty. Creates the parent folder.
   * When appending, a half-written last line (the process died mid-write) is cut off.
   */
  constructor(
    readonly file: string,
    append: boolean,
    opts: MetricsOpenOptions = {},
  ) {
    try {
      makeFolders(path.dirname(file));
      if (!append || !fs.existsSync(file)) {
        fs.writeFileSync(file, '');
        return;
      }
    } catch (e) {
      throw new UserError(`${file}: ${describeWriteError(e)}`);
    }
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new UserError(`${file}: ${describeReadError(e)}`);
    }
    try {
      const lines = text.split('\n');
      lines.pop(); // '' after the last newline, or a partial line
      const kept =
        opts.dropAfterStep === undefined
          ? lines
          : lines.filter((l) => {
              const step = parseRecord(l)?.step;
              return !(typeof step === 'number' && step > (opts.dropAfterStep as number));
            });
      const next = kept.map((l) => `${l}\n`).join('');
      if (next !== text) fs.writeFileSync(file, next);
    } catch (e) {
      throw new UserError(`${file}: ${describeWriteError(e)}`);
    }
  }

  /** Appends one record as a line. */
  write(record: object): void {
    try {
      fs.appendFileSync(this.file, `${JSON.stringify(record)}\n`);
    } catch (e) {
      throw new UserError(`${this.file}: ${describeWriteError(e)}`);
    }
  }
}

function parseRecord(line: string): Record<string, unknown> | null {
  try {
    const x: unknown = JSON.parse(line);
    return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Reads a metrics.jsonl file into records, skipping lines that do not parse (a partial last line). */
export function readMetrics(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map(parseRecord)
    .filter((r): r is Record<string, unknown> => r !== null);
}
