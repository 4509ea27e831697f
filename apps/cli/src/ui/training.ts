/**
 * The terminal side of a training run: the headless loop (@factorgen/train) reports events and honours an
 * AbortSignal; here they become the progress line on stderr and SIGINT/SIGTERM handling, as the CLI has always shown
 * them.
 */
import { type TrainEvent, type TrainHooks } from '@factorgen/train';
import { Progress } from './progress';
import { installStopHandler, type StopHandler, type StopHandlerOptions } from './signals';

export type TrainingUiOptions = StopHandlerOptions & {
  /** Where the progress line and the "saved checkpoint" line go (default process.stderr). */
  stream?: NodeJS.WritableStream;
  /** How the "saved checkpoint" line says to continue (default "resume with --resume"). */
  resumeHint?: string;
};

/**
 * Runs `train` with hooks that draw the progress line and turn the first SIGINT/SIGTERM into an abort of its signal
 * (the loop then saves, this says where, and the loop rejects with StopRequested: runCli exits 130/143); a second
 * signal quits at once. The signal handlers are installed when the loop starts (its `start` event) and removed when
 * `train` settles, so a signal before the loop (loading a dataset, opening the run folder) still reaches runCli's.
 */
export async function withTrainingUi<R>(train: (hooks: Required<TrainHooks>) => Promise<R>, opts: TrainingUiOptions = {}): Promise<R> {
  const stream = opts.stream ?? process.stderr;
  const abort = new AbortController();
  let stop: StopHandler | null = null;
  let progress: Progress | null = null;
  const onEvent = (e: TrainEvent) => {
    switch (e.type) {
      case 'start':
        if (!stop) {
          // Forward the handler's abort (its reason: StopRequested with the signal's exit code).
          const handler = installStopHandler(opts);
          handler.signal.addEventListener('abort', () => abort.abort(handler.signal.reason), { once: true });
          stop = handler;
        }
        progress = new Progress(e.totalSteps, e.label, { stream });
        break;
      case 'step':
        progress?.update(e.step, e.fields);
        break;
      case 'done':
        progress?.done();
        break;
      case 'stopped':
        progress?.done();
        stream.write(`${stop?.requested() ?? 'stopped'}: saved checkpoint at step ${e.step} to ${e.checkpointDir}; ${opts.resumeHint ?? 'resume with --resume'}\n`);
        break;
      default:
        break;
    }
  };
  try {
    return await train({ signal: abort.signal, onEvent });
  } finally {
    (stop as StopHandler | null)?.dispose();
  }
}
