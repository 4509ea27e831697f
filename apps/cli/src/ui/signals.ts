/**
 * Graceful stop for long runs: the first SIGINT/SIGTERM only sets a flag and aborts `signal` (with StopRequested as
 * the reason), which the training loop checks between steps (then saves a checkpoint and rejects with it, so runCli
 * exits 130/143); a second signal exits at once with its code.
 */

export type StopSignal = 'SIGINT' | 'SIGTERM';

/**
 * What a training loop rejects with after it stopped on SIGINT/SIGTERM and saved (the reason installStopHandler aborts
 * the loop's signal with); carries the exit code.
 */
export class StopRequested extends Error {
  readonly code: 130 | 143;
  constructor(codeOrSignal: 130 | 143 | StopSignal) {
    const code = typeof codeOrSignal === 'number' ? codeOrSignal : exitCodeFor(codeOrSignal);
    super(`stopped by ${code === 130 ? 'SIGINT' : 'SIGTERM'}`);
    this.name = 'StopRequested';
    this.code = code;
  }
}

export type StopHandler = {
  /** The first signal received since install, or null. */
  requested(): StopSignal | null;
  /** Aborted on the first signal, with a StopRequested carrying its exit code as the reason. */
  signal: AbortSignal;
  /** Removes the handlers (default signal behaviour returns). */
  dispose(): void;
};

/** Shell convention: 128 + signal number (SIGINT 2 -> 130, SIGTERM 15 -> 143). */
export function exitCodeFor(signal: StopSignal): 130 | 143 {
  return signal === 'SIGINT' ? 130 : 143;
}

export type StopHandlerOptions = {
  /** Where the one-line notices go (default process.stderr). */
  stream?: NodeJS.WritableStream;
  /** How to quit on the second signal (default process.exit). */
  exit?: (code: number) => void;
};

/** Installs SIGINT/SIGTERM handlers; call dispose() when the loop ends (also on errors: use finally). */
export function installStopHandler(opts: StopHandlerOptions = {}): StopHandler {
  const stream = opts.stream ?? process.stderr;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let first: StopSignal | null = null;
  const abort = new AbortController();
  const onSignal = (signal: StopSignal) => {
    if (first === null) {
      first = signal;
      stream.write(`factorgen: ${signal} received, stopping after this step and saving a checkpoint (repeat to quit now)\n`);
      abort.abort(new StopRequested(signal));
      return;
    }
    stream.write(`factorgen: ${signal} received again, quitting without saving\n`);
    exit(exitCodeFor(signal));
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    requested: () => first,
    signal: abort.signal,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
