/**
 * The CLI's top level: turns errors into exit codes.
 *   UserError      -> "factorgen: <message>" (one line) on stderr, exit err.exitCode (2 by default); a message that
 *                     begins with a path given to a flag names the flag ("--tokens X: no such file")
 *   wasm heap exhausted -> "factorgen: --batch N: out of memory ...; lower --batch", exit 2
 *   StopRequested  -> exit 130/143 silently (the loop already said what it saved)
 *   anything else  -> the stack trace (a bug), exit 1
 */
import { UserError } from '@factorgen/tfjs-ext';
import { nameFlagOf, printableLine } from '@factorgen/io';
import { exitCodeFor, StopRequested, type StopSignal } from './signals';

export { StopRequested };
import { heldOutputDirs, pendingOutputFiles } from '@factorgen/io';

export type RunCliIo = { stderr?: NodeJS.WritableStream; exit?: (code: number) => void; argv?: string[] };

/**
 * True for what the wasm backend throws when its heap (4 GB at most, wasm32) is exhausted: Emscripten's abort from a
 * failed allocation ("Aborted()"), a write through the null pointer a failed malloc returned ("memory access out of
 * bounds"), or a heap that cannot grow.
 */
export function isHeapExhausted(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const wasmError = e.name === 'RuntimeError' || e instanceof RangeError;
  return wasmError && /Aborted\(|memory access out of bounds|Cannot enlarge memory|could not grow|Out of memory|Array buffer allocation failed/i.test(e.message);
}

/** The one line for an exhausted heap, naming --batch (and its value when given in argv). */
export function heapExhaustedMessage(argv: string[]): string {
  // The last occurrence wins, as in commander.
  let value: string | undefined;
  argv.forEach((a, i) => {
    if (a === '--batch') value = argv[i + 1];
    else if (a.startsWith('--batch=')) value = a.slice('--batch='.length);
  });
  const flag = value !== undefined ? `--batch ${value}` : '--batch';
  return `${flag}: out of memory (the WebAssembly heap holds at most 4 GB); lower --batch`;
}

/** Runs `main`; on failure prints as above and exits. Returns normally (exit code untouched) on success. */
export async function runCli(main: () => Promise<void>, io: RunCliIo = {}): Promise<void> {
  const stderr = io.stderr ?? process.stderr;
  const exit = io.exit ?? ((code: number) => process.exit(code));
  // Ctrl-C in a command without its own handler (sample, encode, eval) used to end it with nothing on stderr: say
  // that it stopped and what its output holds. Training loops and serve install their own handler, which then acts.
  const onSignal = (signal: StopSignal) => {
    if (process.listenerCount(signal) > 1) return;
    const dirs = heldOutputDirs();
    const files = pendingOutputFiles();
    const holds =
      (dirs.length
        ? `; ${dirs.join(', ')} ${dirs.length > 1 ? 'are' : 'is'} incomplete (what is there was written whole; .factorgen.json lists what was planned)`
        : '') + (files.length ? `; ${files.join(', ')} ${files.length > 1 ? 'were' : 'was'} not written (written whole at the end)` : '');
    stderr.write(`factorgen: stopped by ${signal}${holds}\n`);
    exit(exitCodeFor(signal));
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    await main();
  } catch (e) {
    if (e instanceof StopRequested) {
      exit(e.code);
    } else if (isHeapExhausted(e)) {
      // Nothing was saved after the failing step began: checkpoints written before stay as they were.
      stderr.write(`factorgen: ${heapExhaustedMessage(io.argv ?? process.argv.slice(2))}\n`);
      exit(2);
    } else if (e instanceof UserError) {
      // One line, whatever the message holds.
      const line = printableLine(e.message.replace(/\s*\n\s*/g, ' ').trim());
      stderr.write(`factorgen: ${nameFlagOf(line, io.argv ?? process.argv.slice(2))}\n`);
      exit(e.exitCode);
    } else {
      stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      exit(1);
    }
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
