/**
 * Training runs under stress through the real CLI: SIGINT / SIGTERM mid-run (atomic checkpoint, exit 130 / 143, --resume
 * continues from the saved step), divergence to NaN (exit 3, the last good checkpoint kept), a save that cannot happen.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadCheckpoint } from '@factorgen/io';
import { readMetrics } from '@factorgen/train';
import { errorLines, interruptCli, makeImageFolder, makeTokenFile, makeTokenizer, runCliProcess, type CliResult } from './fixtures';

let root: string;
let images: string;
let tokens: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-clitrain-'));
  images = path.join(root, 'images');
  await makeImageFolder(images, { a: 3, b: 3 });
  await initBackend('cpu');
  tokens = path.join(root, 'train.tokens');
  await makeTokenFile(await makeTokenizer(path.join(root, 'tok')), tokens);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const tokFlags = ['tokenizer', 'train', '--dataset', 'folder', '--data', '', '--size', '8', '--channels', '1', '--sub-codebooks', '2',
  '--codebook-size', '16', '--code-dim', '4', '--base-channels', '8', '--channel-mult', '1,2', '--no-attention', '--latent-channels', '8',
  '--batch', '4', '--log-every', '1', '--backend', 'wasm'];
const tokTrain = (...args: string[]) => tokFlags.map((a) => (a === '' ? images : a)).concat(args);
const genTrain = (...args: string[]) =>
  ['generator', 'train', '--tokens', tokens, '--width', '16', '--depth', '1', '--heads', '2', '--batch', '4', '--log-every', '1',
    '--backend', 'wasm', ...args];

const checkpointStep = (run: string) => (JSON.parse(fs.readFileSync(path.join(run, 'checkpoint', 'config.json'), 'utf8')) as { step: number }).step;
const loggedSteps = (run: string) => readMetrics(path.join(run, 'metrics.jsonl')).map((r) => r.step as number);

describe('signals during training', () => {
  it('SIGINT (tokenizer) and SIGTERM (generator): checkpoint at the step reached, exit 130 / 143, --resume continues from it', async () => {
    const tokRun = path.join(root, 'tok-int');
    const genRun = path.join(root, 'gen-term');
    const [int, term] = await Promise.all([
      interruptCli(tokTrain('--steps', '100000', '--out', tokRun), tokRun, 'SIGINT'),
      interruptCli(genTrain('--steps', '100000', '--out', genRun), genRun, 'SIGTERM'),
    ]);
    for (const [r, run, sig, code] of [[int, tokRun, 'SIGINT', 130], [term, genRun, 'SIGTERM', 143]] as const) {
      expect(r.code, r.stderr).toBe(code);
      const k = checkpointStep(run);
      expect(k).toBeGreaterThanOrEqual(2);
      expect(r.stderr).toContain(`factorgen: ${sig} received, stopping after this step and saving a checkpoint (repeat to quit now)\n`);
      expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(`${sig}: saved checkpoint at step ${k} to ${run}/checkpoint; resume with --resume`);
      expect(fs.readdirSync(run).sort()).toEqual(['.factorgen.json', 'checkpoint', 'metrics.jsonl']); // no .tmp-* / .old-* left: the save completed
      expect(loggedSteps(run)).toEqual(Array.from({ length: k }, (_, i) => i + 1));
    }
    const kTok = checkpointStep(tokRun);
    const kGen = checkpointStep(genRun);
    const [tokResumed, genResumed] = await Promise.all([
      runCliProcess(tokTrain('--steps', String(kTok + 2), '--out', tokRun, '--resume')),
      runCliProcess(genTrain('--steps', String(kGen + 2), '--out', genRun, '--resume')),
    ]);
    for (const [r, run, k] of [[tokResumed, tokRun, kTok], [genResumed, genRun, kGen]] as const) {
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { steps: number }).steps).toBe(k + 2);
      expect(checkpointStep(run)).toBe(k + 2);
      expect(loggedSteps(run)).toEqual(Array.from({ length: k + 2 }, (_, i) => i + 1)); // k+1 and k+2 were appended once
    }
  });
});

describe('divergence and failing saves', () => {
  it('NaN: a run whose lr is 1e30 from step 2 on stops at the step that diverged, exit 3, the step-2 checkpoint is kept byte for byte', async () => {
    const run = path.join(root, 'nan');
    const first = await runCliProcess(tokTrain('--steps', '2', '--out', run));
    expect(first.code, first.stderr).toBe(0);
    const ck = path.join(run, 'checkpoint');
    // --resume --lr 1e30 is refused (it contradicts the run), so the run's recorded lr is edited instead.
    const cfgFile = path.join(ck, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as { extra: { train: { lr: number; warmup: number } } };
    Object.assign(cfg.extra.train, { lr: 1e30, warmup: 0 });
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    const before = fs.readdirSync(ck).map((f) => fs.readFileSync(path.join(ck, f)));
    const r = await runCliProcess(tokTrain('--steps', '20', '--checkpoint-every', '1000', '--resume', '--out', run));
    expect(r.code, r.stderr).toBe(3);
    const lines = errorLines(r.stderr).filter((l) => l.startsWith('factorgen: '));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^factorgen: training diverged: \\w+ is (NaN|-?Infinity) at step \\d+; stopped, ${ck} \\(step 2\\) is kept$`));
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(lines[0]); // the last thing printed
    fs.readdirSync(ck).forEach((f, i) => expect(fs.readFileSync(path.join(ck, f)).equals(before[i]), f).toBe(true));
    const loaded = await loadCheckpoint(ck, 'tokenizer');
    expect(loaded.step).toBe(2);
  });

  it('wasm heap exhausted (--batch 100000): one line naming --batch, exit 2, no checkpoint written', async () => {
    const run = path.join(root, 'oom');
    // Flags after the fixture's own --batch 4 win (commander keeps the last).
    const r = await runCliProcess(tokTrain('--steps', '2', '--out', run, '--batch', '100000'));
    expect(r.code, r.stderr).toBe(2);
    expect(errorLines(r.stderr)).toEqual(['factorgen: --batch 100000: out of memory (the WebAssembly heap holds at most 4 GB); lower --batch']);
    expect(fs.existsSync(path.join(run, 'checkpoint'))).toBe(false);
  });

  it('a save that cannot happen (the checkpoint path is a file; --out under a file): one line, exit 2, nothing replaced', async () => {
    const run = path.join(root, 'blocked');
    fs.mkdirSync(run);
    fs.writeFileSync(path.join(run, 'checkpoint'), 'not a folder');
    const notDir = path.join(root, 'a-file');
    fs.writeFileSync(notDir, 'x');
    const [blocked, under] = await Promise.all([
      runCliProcess(genTrain('--steps', '2', '--out', run)),
      runCliProcess(genTrain('--steps', '2', '--out', path.join(notDir, 'run'))),
    ]);
    const forced = await runCliProcess(genTrain('--steps', '2', '--out', run, '--overwrite'));
    const last = (r: CliResult) => r.stderr.trimEnd().split('\n').at(-1);
    // Refused before any step: the folder is not empty, and --overwrite removes only what factorgen wrote.
    for (const r of [blocked, forced]) {
      expect(r.code, r.stderr).toBe(2);
      expect(errorLines(r.stderr), r.stderr).toHaveLength(1);
    }
    expect(last(blocked)).toBe(`factorgen: --out ${run}: is not empty (checkpoint); pass --overwrite to replace it or choose another folder`);
    expect(last(forced)).toBe(
      `factorgen: --out ${run}: also holds files factorgen did not write (checkpoint); --overwrite removes only factorgen's outputs, so move them or choose another folder`,
    );
    expect(fs.readFileSync(path.join(run, 'checkpoint'), 'utf8')).toBe('not a folder');
    expect(under.code, under.stderr).toBe(2);
    expect(errorLines(under.stderr)).toEqual([`factorgen: --out ${path.join(notDir, 'run')}: ${notDir} is a file, not a folder`]);
  });
});
