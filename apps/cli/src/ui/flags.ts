/**
 * commander argument parsers: `.option('--steps <n>', 'training steps', positiveInt, 1000)`.
 * They throw commander's InvalidArgumentError, which commander turns into one line and exit code 1:
 *   error: option '--steps <n>' argument 'abc' is invalid. Expected a positive integer.
 * Parsing is strict: no '', '1e3' for integers, '0x10', 'NaN', 'Infinity', or trailing junk ('12abc').
 * (commander does not run parsers on defaults, so defaults are given as numbers.)
 */
import { InvalidArgumentError } from 'commander';
import { backendChoices, type BackendChoice } from '@factorgen/tfjs-ext/node';

const INT = /^\+?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function parseIntStrict(value: string, reason: string): number {
  const s = value.trim();
  const n = Number(s);
  if (!INT.test(s) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(reason);
  return n;
}

function parseFloatStrict(value: string, reason: string): number {
  const s = value.trim();
  const x = Number(s);
  if (!FLOAT.test(s) || !Number.isFinite(x)) throw new InvalidArgumentError(reason);
  return x;
}

/** An integer >= 1 (steps, batch size, ...). */
export function positiveInt(value: string): number {
  const reason = 'Expected a positive integer.';
  const n = parseIntStrict(value, reason);
  if (n < 1) throw new InvalidArgumentError(reason);
  return n;
}

/** An integer in [min, max]: `.option('--sub-codebooks <K>', '... (1..8)', intInRange(1, 8))`. */
export function intInRange(min: number, max: number): (value: string) => number {
  const reason = `Expected an integer from ${min} to ${max}.`;
  return (value: string) => {
    const n = parseIntStrict(value, reason);
    if (n < min || n > max) throw new InvalidArgumentError(reason);
    return n;
  };
}

/** An integer >= 0 (warmup steps, seeds, ...). */
export function nonNegativeInt(value: string): number {
  return parseIntStrict(value, 'Expected an integer >= 0.');
}

/** A finite number > 0 (learning rate, temperature, ...). */
export function positiveFloat(value: string): number {
  const reason = 'Expected a positive number.';
  const x = parseFloatStrict(value, reason);
  if (!(x > 0)) throw new InvalidArgumentError(reason);
  return x;
}

/** A finite number >= 0 (weight decay, clip norm with 0 = off, ...). */
export function nonNegativeFloat(value: string): number {
  const reason = 'Expected a number >= 0.';
  const x = parseFloatStrict(value, reason);
  if (x < 0) throw new InvalidArgumentError(reason);
  return x === 0 ? 0 : x; // "-0" -> 0
}

/** A finite number in [min, max]: `.option('--beta1 <x>', '...', floatInRange(0, 1))`. */
export function floatInRange(min: number, max: number): (value: string) => number {
  const reason = `Expected a number from ${min} to ${max}.`;
  return (value: string) => {
    const x = parseFloatStrict(value, reason);
    if (x < min || x > max) throw new InvalidArgumentError(reason);
    return x === 0 ? 0 : x;
  };
}

/** A number in [0, 1] (dropout, top-p, guidance mix, ...). */
export const probability: (value: string) => number = floatInRange(0, 1);

/** Comma-separated positive integers: "1024,1024" -> [1024, 1024] (sizes, channel multipliers). */
export function intList(value: string): number[] {
  const reason = 'Expected comma-separated positive integers, e.g. 64,64.';
  const parts = value.split(',');
  return parts.map((p) => {
    const n = parseIntStrict(p, reason);
    if (n < 1) throw new InvalidArgumentError(reason);
    return n;
  });
}

/** --backend: one of auto, tensorflow, wasm, cpu. */
export function parseBackend(value: string): BackendChoice {
  const choice = value.trim() as BackendChoice;
  if (!backendChoices.includes(choice)) throw new InvalidArgumentError(`Expected one of ${backendChoices.join(', ')}.`);
  return choice;
}

/** --ema: a decay in [0, 1) (0 = no EMA). */
export function emaDecay(value: string): number {
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || v < 0 || v >= 1) throw new InvalidArgumentError(`expected a decay in [0, 1) (got "${value}")`);
  return v;
}
