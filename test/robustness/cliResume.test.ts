/**
 * --resume cannot silently change a run: flags that contradict the checkpoint are refused (naming each with both
 * values), flags left out take the run's values, and class-name lists (not only their counts) must match.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { errorLines, makeImageFolder, makePipeline, runCliProcess } from './fixtures';

let root: string;
let tokRun: string;
let genRun: string;
let t1: string;
let rotated: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-cliresume-'));
  await initBackend('cpu');
  ({ tokRun, tokensFile: t1, genRun } = await makePipeline(root, { tokens: 't1.tokens' }));
  // The same token file naming the classes in another order (same header length: same names, rotated).
  rotated = path.join(root, 'rotated.tokens');
  const raw = fs.readFileSync(t1);
  const text = raw.toString('latin1').replace('["bar zero","bar one","bar two"]', '["bar one","bar two","bar zero"]');
  expect(text).not.toBe(raw.toString('latin1'));
  fs.writeFileSync(rotated, Buffer.from(text, 'latin1'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const genResume = (...args: string[]) => ['generator', 'train', '--resume', '--out', genRun, '--tokens', t1, '--backend', 'wasm', ...args];
const checkpointOf = (run: string) => JSON.parse(fs.readFileSync(path.join(run, 'checkpoint', 'config.json'), 'utf8')) as {
  step: number; extra: { train: Record<string, unknown> };
};
const tail = 'a resumed run keeps its settings: leave these flags out, or start a new run in another folder';

describe('--resume with flags', () => {
  it('contradicting flags are refused naming each flag and both values; nothing is written', async () => {
    const before = fs.readFileSync(path.join(genRun, 'checkpoint', 'model.safetensors'));
    const [model, run, tok, head] = await Promise.all([
      runCliProcess(genResume('--width', '32', '--depth', '2', '--heads', '4')),
      runCliProcess(genResume('--batch', '8', '--seed', '1', '--lr', '0.01')),
      runCliProcess(['tokenizer', 'train', '--resume', '--out', tokRun, '--codebook-size', '32', '--sub-codebooks', '3', '--base-channels', '16', '--backend', 'wasm']),
      runCliProcess(genResume('--head-mode', 'parallel', '--steps', '9')),
    ]);
    const expectLine = (r: Awaited<ReturnType<typeof runCliProcess>>, line: string) => {
      expect(r.code, r.stderr).toBe(2);
      expect(errorLines(r.stderr)).toEqual([line]);
    };
    expectLine(model, `factorgen: --resume: --width 32 (trained with 16), --depth 2 (trained with 1), --heads 4 (trained with 2) contradict the run in ${genRun}; ${tail}`);
    expectLine(run, `factorgen: --resume: --batch 8 (trained with 4), --lr 0.01 (trained with 0.003), --seed 1 (trained with robust) contradict the run in ${genRun}; ${tail}`);
    expectLine(tok, `factorgen: --resume: --sub-codebooks 3 (trained with 2), --codebook-size 32 (trained with 16,16), --base-channels 16 (trained with 8) contradict the run in ${tokRun}; ${tail}`);
    expectLine(head, `factorgen: --resume: --head-mode parallel (trained with ar) contradicts the run in ${genRun}; ${tail}`);
    expect(fs.readFileSync(path.join(genRun, 'checkpoint', 'model.safetensors')).equals(before)).toBe(true);
  }, 120_000);

  it('flags left out take the run\'s values (not the defaults); --steps may change', async () => {
    const r = await runCliProcess(genResume('--steps', '3', '--width', '16'));
    expect(r.code, r.stderr).toBe(0);
    const ck = checkpointOf(genRun);
    expect(ck.step).toBe(3);
    // the run was made with batch 4, seed "robust", lr 3e-3: not the CLI defaults 64, "0", 1e-3
    expect(ck.extra.train).toMatchObject({ steps: 3, batch: 4, seed: 'robust', lr: 3e-3, warmup: 1, clip: 1, logEvery: 1, checkpointEvery: 1000 });
  }, 120_000);
});

describe('class-name lists', () => {
  it('--val and --resume compare the lists, not their lengths; a checkpoint whose list does not fit its class count is refused at load', async () => {
    const badList = path.join(root, 'bad-list');
    fs.cpSync(genRun, badList, { recursive: true });
    const cfgFile = path.join(badList, 'checkpoint', 'config.json');
    const j = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { extra: { classNames: string[] } };
    j.extra.classNames.push('bar three');
    fs.writeFileSync(cfgFile, JSON.stringify(j));
    const short = path.join(root, 'short-list');
    fs.cpSync(genRun, short, { recursive: true });
    const j2 = JSON.parse(fs.readFileSync(path.join(short, 'checkpoint', 'config.json'), 'utf8')) as { extra: { classNames: string[] } };
    j2.extra.classNames.pop();
    fs.writeFileSync(path.join(short, 'checkpoint', 'config.json'), JSON.stringify(j2));

    const [val, resumed, extra, fewer] = await Promise.all([
      runCliProcess(['generator', 'train', '--tokens', t1, '--val', rotated, '--out', path.join(root, 'g-val'), '--width', '16', '--depth', '1', '--heads', '2', '--backend', 'wasm']),
      runCliProcess(['generator', 'train', '--resume', '--out', genRun, '--tokens', rotated, '--steps', '9', '--backend', 'wasm']),
      runCliProcess(['sample', '--generator', badList, '--out', path.join(root, 's-extra'), '--backend', 'wasm']),
      runCliProcess(['sample', '--generator', short, '--out', path.join(root, 's-fewer'), '--backend', 'wasm']),
    ]);
    expect(val.code, val.stderr).toBe(2);
    expect(errorLines(val.stderr)).toEqual(["factorgen: --val: classes [bar one, bar two, bar zero] differ from --tokens' [bar zero, bar one, bar two]"]);
    expect(resumed.code, resumed.stderr).toBe(2);
    expect(errorLines(resumed.stderr)).toEqual([`factorgen: --tokens ${rotated}: classes [bar one, bar two, bar zero] differ from the run's [bar zero, bar one, bar two]`]);
    expect(extra.code, extra.stderr).toBe(2);
    expect(errorLines(extra.stderr)).toEqual([`factorgen: --generator ${badList}: checkpoint: config.json lists 4 class names for 3 classes`]);
    expect(fewer.code, fewer.stderr).toBe(2);
    expect(errorLines(fewer.stderr)).toEqual([`factorgen: --generator ${short}: checkpoint: config.json lists 2 class names for 3 classes`]);
    expect(checkpointOf(genRun).extra).toMatchObject({ classNames: ['bar zero', 'bar one', 'bar two'] });
  }, 120_000);

  it('teacher --resume on a dataset with other class names is refused', async () => {
    const ab = path.join(root, 'ab');
    const ac = path.join(root, 'ac');
    await makeImageFolder(ab, { a: 10, b: 10 }); // every 10th image of a class is test
    await makeImageFolder(ac, { a: 10, c: 10 });
    const teacher = path.join(root, 'teacher');
    const flags = ['--dataset', 'folder', '--size', '8', '--channels', '1', '--batch', '2', '--out', teacher, '--backend', 'wasm'];
    const first = await runCliProcess(['teacher', 'train', '--data', ab, '--steps', '1', ...flags]);
    expect(first.code, first.stderr).toBe(0);
    const again = await runCliProcess(['teacher', 'train', '--resume', '--data', ac, '--steps', '2', ...flags]);
    expect(again.code, again.stderr).toBe(2);
    expect(errorLines(again.stderr)).toEqual([`factorgen: --dataset folder:ac/train: classes [a, c] differ from the run's [a, b]`]);
  }, 120_000);
});
