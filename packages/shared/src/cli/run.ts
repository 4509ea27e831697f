/**
 * The CLI's top level: turns errors into exit codes.
 *   UserError      -> "factorgen: <message>" (one line) on stderr, exit err.exitCode (2 by default)
 *   StopRequested  -> exit 130/143 silently (the loop already said what it saved)
 *   anything else  -> the stack trace (a bug), exit 1
 */
import { UserError } from '../errors';
import { exitCodeFor, type StopSignal } from './signals';

/** Thrown by a training loop that stopped on SIGINT/SIGTERM after saving; carries the exit code. */
export class StopRequested extends Error {
  readonly code: 130 | 143;
  constructor(codeOrSignal: 130 | 143 | StopSignal) {
    const code = typeof codeOrSignal === 'number' ? codeOrSignal : exitCodeFor(codeOrSignal);
    super(`stopped by ${code === 130 ? 'SIGINT' : 'SIGTERM'}`);
    this.name = 'StopRequested';
    this.code = code;
  }
}

export type RunCliIo = { stderr?: NodeJS.WritableStream; exit?: (code: number) => void };

/** Runs `main`; on failure prints as above and exits. Returns normally (exit code untouched) on success. */
export async function runCli(main: () => Promise<void>, io: RunCliIo = {}): Promise<void> {
  const stderr = io.stderr ?? process.stderr;
  const exit = io.exit ?? ((code: number) => process.exit(code));
  try {
    await main();
  } catch (e) {
    if (e instanceof StopRequested) {
      exit(e.code);
    } else if (e instanceof UserError) {
      // One line, whatever the message holds.
      stderr.write(`factorgen: ${e.message.replace(/\s*\n\s*/g, ' ').trim()}\n`);
      exit(e.exitCode);
    } else {
      stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      exit(1);
    }
  }
}
