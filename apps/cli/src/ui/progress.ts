/**
 * Training progress on stderr. On a TTY: one line redrawn in place (bar, steps/s, ETA, metrics).
 * Otherwise (logs, CI, pipes): a plain line every `every` steps (default ~20 lines per run) or every 30 s,
 * whichever comes first, plus the last step.
 */

/** "45s", "4m08s", "2h05m", "3d04h"; "?" when unknown. Seconds are floored. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.floor(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/** "12.3 step/s", or "4.2 s/step" for slow runs; "? step/s" before anything is known. `unit` replaces "step". */
export function formatRate(stepsPerSecond: number, unit = 'step'): string {
  const r = stepsPerSecond;
  if (!Number.isFinite(r) || r <= 0) return `? ${unit}/s`;
  if (r >= 1) return `${r.toFixed(r >= 100 ? 0 : r >= 10 ? 1 : 2)} ${unit}/s`;
  return `${(1 / r).toFixed(1)} s/${unit}`;
}

/** Metric values: integers as is, tiny or huge numbers as "3.00e-4", others with 4 significant digits. */
export function formatValue(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const a = Math.abs(x);
  if (a < 1e-3 || a >= 1e4) return x.toExponential(2);
  return x.toPrecision(4);
}

/** "[#####.....]" of `width` cells inside the brackets. */
export function formatBar(fraction: number, width: number): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export type ProgressLine = {
  label: string;
  step: number;
  total: number;
  stepsPerSecond: number;
  /** Seconds left (while running) or taken (when done). */
  seconds: number;
  done?: boolean;
  fields: Record<string, number>;
  /** Bar width in cells; 0 = no bar. */
  bar?: number;
  /** What a step is, for the rate ("image": "3.1 image/s"); default "step". */
  unit?: string;
};

/** "tokenizer [##..] 120/1000 12% | 3.41 step/s | eta 4m18s | loss 0.4213 lr 3.00e-4" */
export function formatLine(p: ProgressLine): string {
  const frac = p.total > 0 ? p.step / p.total : 1;
  const head = [p.label, ...(p.bar ? [formatBar(frac, p.bar)] : []), `${p.step}/${p.total}`, `${Math.floor(frac * 100)}%`];
  const time = p.done ? `took ${formatDuration(p.seconds)}` : `eta ${formatDuration(p.seconds)}`;
  const fields = Object.entries(p.fields).map(([k, v]) => `${k} ${formatValue(v)}`);
  return [head.join(' '), formatRate(p.stepsPerSecond, p.unit), time, ...(fields.length ? [fields.join(' ')] : [])].join(' | ');
}

type Out = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export type ProgressOptions = {
  /** Default process.stderr. */
  stream?: Out;
  /** Plain mode: print every this many steps (default ceil(total / 20)). */
  every?: number;
  /** Plain mode: also print when this many seconds passed since the last line (default 30). */
  everySeconds?: number;
  /** Step the run starts from (resume); default: the first update's step minus one. */
  startStep?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
  /** When the work started, on that clock (default: when the Progress is made). */
  startedAt?: number;
  /** What a step is, for the rate (default "step"). */
  unit?: string;
};

export class Progress {
  private readonly stream: Out;
  private readonly tty: boolean;
  private readonly every: number;
  private readonly everyMs: number;
  private readonly now: () => number;
  private readonly t0: number;
  private readonly unit: string | undefined;
  private startStep: number | undefined;
  private lastStep = 0;
  private lastFields: Record<string, number> = {};
  private lastPrintStep = -1;
  private lastPrintMs: number;
  private finished = false;

  constructor(
    private readonly total: number,
    private readonly label: string,
    opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.every = Math.max(1, opts.every ?? Math.ceil(total / 20));
    this.everyMs = (opts.everySeconds ?? 30) * 1000;
    this.now = opts.now ?? (() => performance.now());
    this.t0 = opts.startedAt ?? this.now();
    this.unit = opts.unit;
    this.lastPrintMs = this.t0;
    this.startStep = opts.startStep;
  }

  /** Call after each step with the number of steps done and the metrics to show. */
  update(step: number, fields: Record<string, number>): void {
    this.startStep ??= step - 1;
    this.lastStep = step;
    this.lastFields = fields;
    const now = this.now();
    if (this.tty) {
      // Redrawing costs a syscall and flicker; 10 times a second is plenty.
      if (now - this.lastPrintMs >= 100 || step >= this.total || this.lastPrintStep < 0) this.print(false, now);
    } else if (this.lastPrintStep < 0 || step - this.lastPrintStep >= this.every || now - this.lastPrintMs >= this.everyMs || step >= this.total) {
      this.print(false, now);
    }
  }

  /** Prints the final line (elapsed time instead of ETA). Idempotent. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.lastPrintStep < 0 && this.startStep === undefined) return; // nothing ran
    this.print(true, this.now());
    if (this.tty) this.stream.write('\n');
  }

  private print(done: boolean, now: number): void {
    const elapsed = (now - this.t0) / 1000;
    const stepsDone = this.lastStep - (this.startStep ?? this.lastStep);
    const rate = elapsed > 0 ? stepsDone / elapsed : 0;
    const seconds = done ? elapsed : rate > 0 ? (this.total - this.lastStep) / rate : NaN;
    const line = formatLine({
      label: this.label,
      step: this.lastStep,
      total: this.total,
      stepsPerSecond: rate,
      seconds,
      done,
      fields: this.lastFields,
      bar: this.tty ? 20 : 0,
      unit: this.unit,
    });
    if (this.tty) {
      const width = Math.max(20, (this.stream.columns ?? 100) - 1);
      this.stream.write(`\r${line.length > width ? line.slice(0, width) : line}\x1b[K`);
    } else if (!(done && this.lastPrintStep === this.lastStep)) {
      this.stream.write(`${line}\n`);
    }
    this.lastPrintStep = this.lastStep;
    this.lastPrintMs = now;
  }
}
