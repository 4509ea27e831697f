import { engineInternals } from './engineTypes';

/**
 * Runs f with the tape off: its ops record nothing and save nothing for a backward pass, so their intermediates are
 * freed at once (as tfjs does inside a kernel). For values that need no gradient (argmax indices, statistics) computed
 * inside a function whose other parts are being differentiated. f: any; returns f's result.
 */
export function withoutTape<T>(f: () => T): T {
  const engine = engineInternals();
  return engine.scopedRun(
    () => engine.state.kernelDepth++,
    () => engine.state.kernelDepth--,
    f,
  );
}
