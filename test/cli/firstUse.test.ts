/**
 * What a newcomer ran into with the README and the CLI: a resume that trained nothing and said it saved, a flag range
 * the help states but nobody enforced, --tokens required on resume, a mistyped flag reported as a missing one,
 * errno codes instead of words, a silent multi-minute probe, and no --version. Exact lines, as the user sees them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { buildProgram } from '@factorgen/cli/program';
import { expectOneLine, makeImageFolder, makePipeline, repoRoot, runCliProcess } from '../robustness/fixtures';

let root: string;
let tokRun: string;
let genRun: string;
let tokens: string;
let folder: string;
let teacherRun: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-firstuse-'));
  await initBackend('cpu');
  ({ tokRun, tokensFile: tokens, genRun } = await makePipeline(root)); // 2 steps each
  folder = path.join(root, 'ab');
  await makeImageFolder(folder, { a: 10, b: 10 }); // 8x8 grey; every 10th image of a class is test
  teacherRun = path.join(root, 'teacher');
  const t = await runCliProcess(['teacher', 'train', '--dataset', 'folder', '--data', folder, '--size', '8', '--channels', '1', '--batch', '2', '--steps', '2', '--out', teacherRun, '--backend', 'wasm']);
  expect(t.code, t.stderr).toBe(0);
}, 180_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const stepOf = (run: string) => (JSON.parse(fs.readFileSync(path.join(run, 'checkpoint', 'config.json'), 'utf8')) as { step: number }).step;

/** Parses `args` in-process with the real program (commands that fail while parsing: nothing runs); commander's output and exit code. */
async function parseOnly(args: string[]): Promise<{ code: number; err: string; out: string }> {
  const program = buildProgram();
  let err = '';
  let out = '';
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: (s) => (out += s) });
    c.commands.forEach(quiet);
  };
  quiet(program);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: e.exitCode, err, out };
  }
  throw new Error(`${args.join(' ')}: parsed without an error`);
}

describe('--resume past the requested total', () => {
  it('is refused in one line for tokenizer, generator and teacher; the checkpoint stays as it was', async () => {
    const before = fs.readFileSync(path.join(genRun, 'checkpoint', 'model.safetensors'));
    const [tok, gen, genEqual, teacher] = await Promise.all([
      runCliProcess(['tokenizer', 'train', '--resume', '--out', tokRun, '--steps', '1', '--backend', 'wasm']),
      runCliProcess(['generator', 'train', '--resume', '--out', genRun, '--tokens', tokens, '--steps', '1', '--backend', 'wasm']),
      // --steps left out takes the run's (2): also nothing to train
      runCliProcess(['generator', 'train', '--resume', '--out', genRun, '--backend', 'wasm']),
      runCliProcess(['teacher', 'train', '--resume', '--out', teacherRun, '--data', folder, '--steps', '1', '--backend', 'wasm']),
    ]);
    expectOneLine(tok, 2, `factorgen: --steps 1: the run in ${tokRun} is already at step 2; give --steps > 2 to continue`);
    expectOneLine(gen, 2, `factorgen: --steps 1: the run in ${genRun} is already at step 2; give --steps > 2 to continue`);
    expectOneLine(genEqual, 2, `factorgen: --steps 2: the run in ${genRun} is already at step 2; give --steps > 2 to continue`);
    expectOneLine(teacher, 2, `factorgen: --steps 1: the run in ${teacherRun} is already at step 2; give --steps > 2 to continue`);
    expect([stepOf(tokRun), stepOf(genRun), stepOf(teacherRun)]).toEqual([2, 2, 2]);
    expect(fs.readFileSync(path.join(genRun, 'checkpoint', 'model.safetensors')).equals(before)).toBe(true);
  }, 180_000);
});

describe('flags left out on --resume take the run\'s values', () => {
  it('generator: --tokens is the run\'s token file; teacher: --dataset is the run\'s (its folder still comes from --data)', async () => {
    const [gen, noData] = await Promise.all([
      runCliProcess(['generator', 'train', '--resume', '--out', genRun, '--steps', '3', '--backend', 'wasm']),
      runCliProcess(['teacher', 'train', '--resume', '--out', teacherRun, '--steps', '3', '--backend', 'wasm']),
    ]);
    expect(gen.code, gen.stderr).toBe(0);
    expect(stepOf(genRun)).toBe(3);
    expectOneLine(noData, 2, 'factorgen: --data: required with --dataset folder (a folder of ROOT/<class>/*.png)');
    const teacher = await runCliProcess(['teacher', 'train', '--resume', '--out', teacherRun, '--data', folder, '--steps', '3', '--backend', 'wasm']);
    expect(teacher.code, teacher.stderr).toBe(0);
    expect(stepOf(teacherRun)).toBe(3);
  }, 180_000);

  it('--resume without a checkpoint says so before any required flag is missed', async () => {
    const none = path.join(root, 'no-run');
    const r = await runCliProcess(['generator', 'train', '--resume', '--out', none]);
    expectOneLine(r, 2, `factorgen: --resume: ${none} holds no checkpoint to resume (no such folder)`);
  }, 60_000);
});

describe('files and folders named by their flag, causes in words', () => {
  it('--tokens missing or a folder, a checkpoint folder that does not exist', async () => {
    const missing = path.join(root, 'nosuch.tokens');
    const nc = path.join(root, 'nc', 'nosuch');
    const [noFile, isFolder, noGen, noTok] = await Promise.all([
      runCliProcess(['generator', 'train', '--out', path.join(root, 'g1'), '--tokens', missing, '--backend', 'wasm']),
      runCliProcess(['generator', 'train', '--out', path.join(root, 'g2'), `--tokens=${root}`, '--backend', 'wasm']),
      runCliProcess(['sample', '--generator', nc, '--out', path.join(root, 's'), '--backend', 'wasm']),
      runCliProcess(['tokenizer', 'encode', '--tokenizer', nc, '--out', path.join(root, 'x.tokens'), '--backend', 'wasm']),
    ]);
    expectOneLine(noFile, 2, `factorgen: --tokens ${missing}: no such file`);
    expectOneLine(isFolder, 2, `factorgen: --tokens ${root}: is a folder, expected a file`);
    expectOneLine(noGen, 2, `factorgen: --generator ${nc}: no such checkpoint folder`);
    expectOneLine(noTok, 2, `factorgen: --tokenizer ${nc}: no such checkpoint folder`);
  }, 120_000);
});

describe('eval probe', () => {
  it('shows progress while it encodes and fits, and its help says what --limit and --train-limit cover', async () => {
    const out = path.join(root, 'probe');
    const r = await runCliProcess([
      'eval', 'probe', '--tokenizer', tokRun, '--dataset', 'folder', '--data', folder, '--size', '8', '--channels', '1',
      '--train-limit', '18', '--limit', '2', '--steps', '5', '--out', out, '--backend', 'wasm',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n');
    // not a TTY: plain lines up to the last step (18 train + 2 test images; K + 1 = 3 probes of 5 steps)
    expect(lines.filter((l) => l.startsWith('probe: encode ')).at(-1)).toMatch(/^probe: encode 20\/20 100% \| \S+ (image\/s|s\/image) \| (eta|took) \d+s$/);
    expect(lines.filter((l) => l.startsWith('probe: fit ')).at(-1)).toMatch(/^probe: fit 15\/15 100% \| \S+ (step\/s|s\/step) \| (eta|took) \d+s$/);
    const help = (await parseOnly(['eval', 'probe', '--help'])).out.replace(/\s+/g, ' ');
    expect(help).toContain('--train-limit <n> train images the probes are fitted on (the first n; encoding them is most of the time) (default: 10000)');
    expect(help).toContain('--limit <n> test images the probes are scored on and the grids take (the first n; --train-limit sets the train images) (default: 10000)');
  }, 120_000);
});

// Parsing-only cases; --out points into the temporary folder in case a regression lets a command run.
describe('parsing', () => {
  const R = () => path.join(root, 'parse-only');
  it('--sub-codebooks outside the stated 1..8 is refused naming the flag', async () => {
    for (const k of ['9', '20', '0']) {
      expect(await parseOnly(['tokenizer', 'train', '--out', R(), '--sub-codebooks', k])).toEqual({
        code: 1, out: '', err: `error: option '--sub-codebooks <K>' argument '${k}' is invalid. Expected an integer from 1 to 8.\n`,
      });
    }
    expect((await parseOnly(['generator', 'train', '--out', R(), '--tokens', 't', '--head-layers', '5'])).err).toBe(
      "error: option '--head-layers <n>' argument '5' is invalid. Expected an integer from 1 to 4.\n",
    );
  });

  it('a mistyped flag is reported before the required flag it was meant to be, in one line', async () => {
    expect(await parseOnly(['sample', '--generatr', 'X'])).toEqual({ code: 1, out: '', err: "error: unknown option '--generatr' (Did you mean --generator?)\n" });
    expect(await parseOnly(['generator', 'train', '--out', R(), '--tokns', 't'])).toEqual({ code: 1, out: '', err: "error: unknown option '--tokns' (Did you mean --tokens?)\n" });
    // with nothing unknown, a missing required flag is still named
    expect(await parseOnly(['sample'])).toEqual({ code: 1, out: '', err: "error: required option '--generator <dir>' not specified\n" });
    expect(await parseOnly(['generator', 'train', '--out', R()])).toEqual({ code: 1, out: '', err: "error: required option '--tokens <file>' not specified\n" });
  });

  it('--version prints the package version', async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    expect(await parseOnly(['--version'])).toEqual({ code: 0, out: `${version}\n`, err: '' });
  });
});
