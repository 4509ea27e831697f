import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '@factorgen/tfjs-ext';
import { floatInRange, intList, nonNegativeFloat, nonNegativeInt, parseBackend, positiveFloat, positiveInt, probability } from '@factorgen/cli/ui/flags';
import { MetricsLog, readMetrics } from '@factorgen/train';
import { Progress, formatDuration, formatLine, formatRate, formatValue } from '@factorgen/cli/ui/progress';
import { StopRequested, runCli } from '@factorgen/cli/ui/run';
import { exitCodeFor, installStopHandler } from '@factorgen/cli/ui/signals';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The CLI's ui modules' files, for a child script written outside the repository. */
const uiEntry = (name: string) => createRequire(import.meta.url).resolve(`@factorgen/cli/ui/${name}`);
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-cli-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Parses `args` with a one-option commander program; returns the value or commander's stderr text + exit code. */
function parseWith(parser: (v: string) => unknown, flag: string, value: string): { value?: unknown; error?: string; code?: number } {
  let err = '';
  const program = new Command()
    .exitOverride()
    .configureOutput({ writeErr: (s) => (err += s), writeOut: () => {} })
    .option(flag, 'test option', parser);
  try {
    program.parse(['node', 'factorgen', flag.split(' ')[0], value]);
  } catch (e) {
    expect(e).toBeInstanceOf(CommanderError);
    return { error: err, code: (e as CommanderError).exitCode };
  }
  return { value: Object.values(program.opts())[0] };
}

describe('flags', () => {
  it('positiveInt accepts integers >= 1 and rejects everything else with one line naming the flag', () => {
    expect(parseWith(positiveInt, '--steps <n>', '1000')).toEqual({ value: 1000 });
    expect(parseWith(positiveInt, '--steps <n>', '+3')).toEqual({ value: 3 });
    for (const bad of ['abc', '-1', '0', 'NaN', 'Infinity', '', '1.5', '1e3', '0x10', '12abc', '99999999999999999999']) {
      expect(parseWith(positiveInt, '--steps <n>', bad)).toEqual({
        error: `error: option '--steps <n>' argument '${bad}' is invalid. Expected a positive integer.\n`,
        code: 1,
      });
    }
  });

  it('nonNegativeInt, positiveFloat, nonNegativeFloat', () => {
    expect(parseWith(nonNegativeInt, '--warmup <n>', '0')).toEqual({ value: 0 });
    expect(parseWith(nonNegativeInt, '--warmup <n>', '-1').error).toBe(
      "error: option '--warmup <n>' argument '-1' is invalid. Expected an integer >= 0.\n",
    );
    expect(parseWith(positiveFloat, '--lr <x>', '3e-4')).toEqual({ value: 3e-4 });
    expect(parseWith(positiveFloat, '--lr <x>', '.5')).toEqual({ value: 0.5 });
    for (const bad of ['abc', '-1', '0', 'NaN', 'Infinity', '-Infinity', '1e999', '']) {
      expect(parseWith(positiveFloat, '--lr <x>', bad).error).toBe(
        `error: option '--lr <x>' argument '${bad}' is invalid. Expected a positive number.\n`,
      );
    }
    expect(parseWith(nonNegativeFloat, '--wd <x>', '0')).toEqual({ value: 0 });
    expect(parseWith(nonNegativeFloat, '--wd <x>', '-0')).toEqual({ value: 0 });
    expect(Object.is(nonNegativeFloat('-0'), 0)).toBe(true);
    expect(parseWith(nonNegativeFloat, '--wd <x>', '-0.1').error).toBe(
      "error: option '--wd <x>' argument '-0.1' is invalid. Expected a number >= 0.\n",
    );
  });

  it('probability, floatInRange, intList, parseBackend', () => {
    expect(parseWith(probability, '--top-p <p>', '1')).toEqual({ value: 1 });
    expect(parseWith(probability, '--top-p <p>', '1.01').error).toBe(
      "error: option '--top-p <p>' argument '1.01' is invalid. Expected a number from 0 to 1.\n",
    );
    expect(parseWith(floatInRange(0.5, 2), '--t <x>', '0.5')).toEqual({ value: 0.5 });
    expect(parseWith(floatInRange(0.5, 2), '--t <x>', 'NaN').error).toBe(
      "error: option '--t <x>' argument 'NaN' is invalid. Expected a number from 0.5 to 2.\n",
    );
    expect(parseWith(intList, '--size <list>', '1024,1024')).toEqual({ value: [1024, 1024] });
    expect(parseWith(intList, '--size <list>', '64')).toEqual({ value: [64] });
    for (const bad of ['', '1024,', ',1', '1,0', '1,x', '1.5']) {
      expect(parseWith(intList, '--size <list>', bad).error).toBe(
        `error: option '--size <list>' argument '${bad}' is invalid. Expected comma-separated positive integers, e.g. 64,64.\n`,
      );
    }
    expect(parseWith(parseBackend, '--backend <name>', 'wasm')).toEqual({ value: 'wasm' });
    expect(parseWith(parseBackend, '--backend <name>', 'gpu').error).toBe(
      "error: option '--backend <name>' argument 'gpu' is invalid. Expected one of auto, webgpu, tensorflow, wasm, cpu.\n",
    );
  });
});

/** A fake stream that records writes. */
function sink(isTTY: boolean, columns = 200) {
  const out: string[] = [];
  const stream = { isTTY, columns, write: (s: string) => (out.push(s), true) } as unknown as NodeJS.WriteStream;
  return { out, stream };
}

describe('progress', () => {
  it('formats durations, rates and values', () => {
    expect([0, 0.9, 45, 59.99, 60, 248, 3599, 3600, 7500, 86399, 86400 + 4 * 3600 + 59].map(formatDuration)).toEqual([
      '0s', '0s', '45s', '59s', '1m00s', '4m08s', '59m59s', '1h00m', '2h05m', '23h59m', '1d04h',
    ]);
    expect([NaN, Infinity, -1].map(formatDuration)).toEqual(['?', '?', '?']);
    expect([0, NaN, 0.25, 3.414, 12.34, 250.4].map((r) => formatRate(r))).toEqual([
      '? step/s', '? step/s', '4.0 s/step', '3.41 step/s', '12.3 step/s', '250 step/s',
    ]);
    expect([3.1, 0.5].map((r) => formatRate(r, 'image'))).toEqual(['3.10 image/s', '2.0 s/image']);
    expect([0, 3, -12, 0.42131, 12.345, 3e-4, 123456.7, NaN].map(formatValue)).toEqual([
      '0', '3', '-12', '0.4213', '12.35', '3.00e-4', '1.23e+5', 'NaN',
    ]);
  });

  it('formats a line with and without a bar', () => {
    const p = { label: 'tokenizer', step: 120, total: 1000, stepsPerSecond: 3.414, seconds: 258, fields: { loss: 0.42131, lr: 3e-4 } };
    expect(formatLine(p)).toBe('tokenizer 120/1000 12% | 3.41 step/s | eta 4m18s | loss 0.4213 lr 3.00e-4');
    expect(formatLine({ ...p, bar: 10, done: true, fields: {} })).toBe('tokenizer [#.........] 120/1000 12% | 3.41 step/s | took 4m18s');
  });

  it('plain mode prints ~every total/20 steps, on a 30 s gap, and the last step; done adds nothing after it', () => {
    const { out, stream } = sink(false);
    let t = 0;
    const p = new Progress(100, 'gen', { stream, now: () => t });
    for (let s = 1; s <= 100; s++) {
      t += s === 50 ? 31_000 : 100; // one slow step
      p.update(s, { loss: 1 / s });
    }
    p.done();
    const steps = out.map((l) => Number(/^gen (\d+)\/100/.exec(l)![1]));
    expect(steps).toEqual([1, 6, 11, 16, 21, 26, 31, 36, 41, 46, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100]);
    expect(out.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    // 100 steps in 40.9 s (the first update's step minus one is taken as the start).
    expect(out.at(-1)).toBe(`gen 100/100 100% | 2.44 step/s | eta 0s | loss 0.01000\n`);
  });

  it('TTY mode redraws one line in place at most 10 times a second and ends with a newline', () => {
    const { out, stream } = sink(true, 60);
    let t = 0;
    const p = new Progress(10, 'tok', { stream, now: () => t, startStep: 0 });
    for (let s = 1; s <= 10; s++) {
      t += 50;
      p.update(s, { loss: 0.5 });
    }
    p.done();
    expect(out.length).toBe(8); // step 1, 3, 5, 7, 9, 10, final, newline
    expect(out.slice(0, -1).every((l) => l.startsWith('\r') && l.endsWith('\x1b[K') && l.length <= 1 + 59 + 3)).toBe(true);
    expect(out.at(-2)).toBe('\r' + 'tok [####################] 10/10 100% | 20.0 step/s | took 0s | loss 0.5000'.slice(0, 59) + '\x1b[K');
    expect(out.at(-1)).toBe('\n');
  });
});

describe('metrics', () => {
  it('starts empty, appends lines, and on resume keeps them (dropping a partial line and steps after the checkpoint)', () => {
    const file = path.join(root, 'run', 'metrics.jsonl');
    const log = new MetricsLog(file, false);
    log.write({ step: 1, loss: 0.5 });
    log.write({ step: 2, loss: NaN });
    expect(fs.readFileSync(file, 'utf8')).toBe('{"step":1,"loss":0.5}\n{"step":2,"loss":null}\n');
    fs.appendFileSync(file, '{"step":3,"lo'); // killed mid-write
    const resumed = new MetricsLog(file, true);
    resumed.write({ step: 3, loss: 0.25 });
    expect(readMetrics(file)).toEqual([{ step: 1, loss: 0.5 }, { step: 2, loss: null }, { step: 3, loss: 0.25 }]);
    new MetricsLog(file, true, { dropAfterStep: 1 }).write({ step: 2, loss: 0.375 });
    expect(readMetrics(file)).toEqual([{ step: 1, loss: 0.5 }, { step: 2, loss: 0.375 }]);
    new MetricsLog(file, false);
    expect(fs.readFileSync(file, 'utf8')).toBe('');
  });
});

describe('runCli', () => {
  async function run(main: () => Promise<void>) {
    let err = '';
    let code: number | null = null;
    await runCli(main, { stderr: { write: (s: string) => ((err += s), true) } as unknown as NodeJS.WritableStream, exit: (c) => (code = c) });
    return { err, code };
  }

  it('prints UserErrors as one line with their exit code, bugs with a stack, stops silently', async () => {
    expect(await run(async () => {})).toEqual({ err: '', code: null });
    expect(await run(async () => Promise.reject(new UserError('data/x.png: not an image')))).toEqual({
      err: 'factorgen: data/x.png: not an image\n',
      code: 2,
    });
    expect(await run(async () => Promise.reject(new UserError('a\n  b', 3)))).toEqual({ err: 'factorgen: a b\n', code: 3 });
    const bug = await run(async () => Promise.reject(new TypeError('x is undefined')));
    expect(bug.code).toBe(1);
    expect(bug.err).toMatch(/^TypeError: x is undefined\n\s+at /);
    expect(await run(async () => Promise.reject(new StopRequested(143)))).toEqual({ err: '', code: 143 });
    // a message that begins with a path the user gave to a flag names the flag (--flag X and --flag=X)
    const named = async (message: string, argv: string[]) => {
      let err = '';
      await runCli(async () => Promise.reject(new UserError(message)), { stderr: { write: (s: string) => ((err += s), true) } as unknown as NodeJS.WritableStream, exit: () => {}, argv });
      return err;
    };
    expect(await named('/tmp/a.tokens: no such file', ['generator', 'train', '--tokens', '/tmp/a.tokens'])).toBe('factorgen: --tokens /tmp/a.tokens: no such file\n');
    expect(await named('/tmp/nc: no such checkpoint folder', ['sample', '--generator=/tmp/nc'])).toBe('factorgen: --generator /tmp/nc: no such checkpoint folder\n');
    // a path inside one names the flag and the rest of the path; the most specific flag wins; "./x/" is "x"
    expect(await named('/tmp/nc/checkpoint: missing', ['sample', '--generator', '/tmp/nc'])).toBe('factorgen: --generator /tmp/nc: checkpoint: missing\n');
    expect(await named('/r/t/a.tokens: no such file', ['--out', '/r', '--tokens', '/r/t/a.tokens'])).toBe('factorgen: --tokens /r/t/a.tokens: no such file\n');
    expect(await named('/r/t/a.tokens: no such file', ['--out', '/r', '--data', '/r/t'])).toBe('factorgen: --data /r/t: a.tokens: no such file\n');
    expect(await named('d/b/x.png: corrupt image', ['--data', './d/'])).toBe('factorgen: --data ./d/: b/x.png: corrupt image\n');
    // not given to a flag, a path that only begins like one, or already naming a flag: unchanged
    expect(await named('/tmp/nc2: missing', ['sample', '--generator', '/tmp/nc'])).toBe('factorgen: /tmp/nc2: missing\n');
    expect(await named('g/checkpoint: missing', ['--generator', 'g', '--tokenizer', 'g'])).toBe('factorgen: g/checkpoint: missing\n');
    expect(await named('--tokens /tmp/a: x', ['--tokens', '/tmp/a'])).toBe('factorgen: --tokens /tmp/a: x\n');
    expect(await named('g: expected a tokenizer checkpoint', ['--generator', 'g', '--tokenizer', 'g'])).toBe('factorgen: g: expected a tokenizer checkpoint\n');
    expect(new StopRequested('SIGINT').code).toBe(130);
    expect([exitCodeFor('SIGINT'), exitCodeFor('SIGTERM')]).toEqual([130, 143]);
  });
});

describe('signals', () => {
  it('installStopHandler only sets a flag; dispose removes its listeners', () => {
    const before = process.listenerCount('SIGTERM');
    const notes: string[] = [];
    const exits: number[] = [];
    const h = installStopHandler({ stream: { write: (s: string) => (notes.push(s), true) } as unknown as NodeJS.WritableStream, exit: (c) => exits.push(c) });
    expect(h.requested()).toBe(null);
    process.emit('SIGTERM', 'SIGTERM');
    expect(h.requested()).toBe('SIGTERM');
    expect(exits).toEqual([]);
    process.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([130]); // the second signal quits at once with its own code
    expect(notes.length).toBe(2);
    h.dispose();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });

  // A real process: the loop sees the flag, "saves", and runCli exits 130/143; a stuck one dies on the second signal.
  const script = `
    import { installStopHandler, exitCodeFor, StopRequested } from '${uiEntry('signals')}';
    import { runCli } from '${uiEntry('run')}';
    await runCli(async () => {
      const stop = installStopHandler();
      process.stdout.write('ready\\n');
      if (process.argv[2] === 'stuck') {
        await new Promise((r) => setTimeout(r, 30_000));
        return;
      }
      for (let step = 1; step < 6000; step++) {
        await new Promise((r) => setTimeout(r, 5));
        const s = stop.requested();
        if (s) {
          process.stderr.write('saved at step ' + step + '\\n');
          throw new StopRequested(exitCodeFor(s));
        }
      }
    });
  `;

  function runChild(mode: string, signals: NodeJS.Signals[]): Promise<{ code: number | null; stderr: string; ms: number }> {
    const file = path.join(root, 'stop-child.mts'); // .mts: ESM (top-level await) outside the repo's package.json
    fs.writeFileSync(file, script);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', file, mode], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let t0 = 0;
      child.stderr.on('data', (d) => {
        stderr += d;
        // Send the next signal only after the previous one was seen (its notice is printed).
        if (signals.length && stderr.includes('received')) child.kill(signals.shift());
      });
      child.stdout.on('data', (d) => {
        if (String(d).includes('ready')) {
          t0 = Date.now();
          child.kill(signals.shift());
        }
      });
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, stderr, ms: Date.now() - t0 }));
    });
  }

  it('a child exits 130 on SIGINT and 143 on SIGTERM after the loop saved', async () => {
    const [int, term] = await Promise.all([runChild('loop', ['SIGINT']), runChild('loop', ['SIGTERM'])]);
    expect(int.stderr).not.toContain('Error');
    expect(int.code).toBe(130);
    expect(int.stderr).toMatch(/^factorgen: SIGINT received, stopping after this step and saving a checkpoint \(repeat to quit now\)\nsaved at step \d+\n$/);
    expect(term.code).toBe(143);
    expect(term.stderr).toMatch(/SIGTERM received.*\nsaved at step \d+\n$/);
  });

  it('a second signal exits at once with its code', async () => {
    const r = await runChild('stuck', ['SIGINT', 'SIGTERM']);
    expect(r.code).toBe(143);
    expect(r.stderr).toContain('factorgen: SIGTERM received again, quitting without saving\n');
    expect(r.ms).toBeLessThan(20_000);
  });
});
