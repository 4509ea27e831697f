/**
 * Output folders cannot clobber each other: one process per folder (a lock naming its holder), a fresh run refuses a
 * non-empty folder unless --overwrite (which removes only what factorgen wrote), nothing writes into a training run's
 * checkpoint but the run, and output paths are checked before any work.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { lockOutputDir, LOCK_FILE } from '@factorgen/io';
import { openRunDir, readMetrics } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { sampleToFolder } from '@factorgen/pipelines';
import { errorLines, makePipeline, runCliProcess, startCli } from './fixtures';
import { inCliWords, thrownInCliWords } from '../support/cliWords';

let root: string;
let tokens: string;
let genRun: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-outputs-'));
  await initBackend('cpu');
  ({ tokensFile: tokens, genRun } = await makePipeline(root, { tokens: 'train.tokens' }));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const genTrain = (...args: string[]) =>
  ['generator', 'train', '--tokens', tokens, '--width', '16', '--depth', '1', '--heads', '2', '--batch', '4', '--log-every', '1', '--backend', 'wasm', ...args];
const sampleArgs = (...args: string[]) => ['sample', '--generator', genRun, '--per-class', '1', '--batch', '4', '--backend', 'wasm', ...args];
const erofs = () => Object.assign(new Error("EROFS: read-only file system, open 'x'"), { code: 'EROFS' });
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
const bytesOf = (dir: string) => new Map(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
const pngsUnder = (dir: string) =>
  fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => fs.readdirSync(path.join(dir, e.name)));

describe('folder locks', () => {
  it('a second lock on a folder is refused naming the holder; released locks and stale ones (dead pid) are taken', () => {
    const dir = path.join(root, 'lock-unit');
    const a = lockOutputDir(dir, 'out', 'generator train');
    expect(thrownInCliWords(() => lockOutputDir(dir, 'out', 'sample'))).toMatch(
      new RegExp(`^--out ${dir}: in use by "factorgen generator train" \\(this process, started \\d{4}-.*\\); wait for it to finish or choose another folder$`),
    );
    a.release();
    expect(fs.existsSync(dir)).toBe(false); // it created the folder and wrote nothing: nothing is left
    fs.mkdirSync(dir);
    const pid = deadPid();
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), command: 'tokenizer train', started: 'then' }));
    const b = lockOutputDir(dir, 'out', 'sample');
    expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    b.release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('two trainings on one --out: the second exits 2 naming the first, which runs on alone (metrics.jsonl holds each step once)', async () => {
    const run = path.join(root, 'race');
    const first = startCli(genTrain('--steps', '100000', '--out', run, '--seed', '1'));
    let stderr = '';
    first.stderr!.on('data', (d) => (stderr += d));
    const firstDone = new Promise<number | null>((resolve) => first.on('close', (code) => resolve(code)));
    const metrics = path.join(run, 'metrics.jsonl');
    while (!(fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').split('\n').length > 3)) await new Promise((r) => setTimeout(r, 50));
    const second = await runCliProcess(genTrain('--steps', '3', '--out', run, '--seed', '2'));
    first.kill('SIGINT');
    expect(await firstDone, stderr).toBe(130);
    expect(second.code, second.stderr).toBe(2);
    expect(errorLines(second.stderr)).toEqual([
      expect.stringMatching(new RegExp(`^factorgen: --out ${run}: in use by "factorgen generator train" \\(pid ${first.pid}, started .*\\); wait for it to finish or choose another folder; if that process is gone, remove ${run}/\\.factorgen\\.lock$`)),
    ]);
    const steps = readMetrics(metrics).map((r) => r.step);
    expect(steps).toEqual(steps.map((_, i) => i + 1));
    expect(fs.existsSync(path.join(run, LOCK_FILE))).toBe(false); // released on the way out
  }, 120_000);
});

describe('fresh runs into non-empty folders, --overwrite', () => {
  it('sample: an earlier sample run is refused, --overwrite replaces it (only its files), other files make --overwrite refuse', async () => {
    const s = path.join(root, 'samples');
    const first = await runCliProcess(sampleArgs('--out', s, '--classes', '0,1'));
    expect(first.code, first.stderr).toBe(0);
    const [again, replaced] = [
      await runCliProcess(sampleArgs('--out', s, '--classes', '2')),
      await runCliProcess(sampleArgs('--out', s, '--classes', '2', '--overwrite')),
    ];
    expect(again.code).toBe(2);
    expect(errorLines(again.stderr)).toEqual([`factorgen: --out ${s}: already holds samples; pass --overwrite to replace it or choose another folder`]);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(fs.readdirSync(s).sort()).toEqual(['.factorgen.json', '2-bar-two', 'grid.png', 'samples.json', 'samples.tokens']);
    expect(pngsUnder(s)).toEqual(['0000.png']);
    expect(JSON.parse(fs.readFileSync(path.join(s, 'samples.json'), 'utf8')).images).toHaveLength(1);

    fs.writeFileSync(path.join(s, 'notes.txt'), 'mine');
    fs.writeFileSync(path.join(s, '2-bar-two', 'keep.png'), 'mine');
    const foreign = await runCliProcess(sampleArgs('--out', s, '--classes', '0', '--overwrite'));
    expect(foreign.code).toBe(2);
    expect(errorLines(foreign.stderr)).toEqual([
      `factorgen: --out ${s}: also holds files factorgen did not write (2-bar-two/keep.png, notes.txt); --overwrite removes only factorgen's outputs, so move them or choose another folder`,
    ]);
    expect(fs.readdirSync(path.join(s, '2-bar-two')).sort()).toEqual(['0000.png', 'keep.png']); // nothing removed
  }, 120_000);

  it("a user's folder (like --out .) is never emptied; training refuses a folder with an old metrics.jsonl, --overwrite replaces a run", async () => {
    const mine = path.join(root, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'a.txt'), 'a');
    fs.writeFileSync(path.join(mine, 'metrics.jsonl'), '{"step":1}\n');
    const [plain, forced, trained] = await Promise.all([
      runCliProcess(sampleArgs('--out', mine, '--classes', '0')),
      runCliProcess(genTrain('--steps', '1', '--out', mine, '--overwrite')),
      runCliProcess(genTrain('--steps', '1', '--out', genRun, '--overwrite', '--seed', 'x')),
    ]);
    expect(plain.code).toBe(2);
    expect(errorLines(plain.stderr)).toEqual([`factorgen: --out ${mine}: is not empty (a.txt, metrics.jsonl); pass --overwrite to replace it or choose another folder`]);
    expect(forced.code).toBe(2);
    expect(errorLines(forced.stderr)).toEqual([
      `factorgen: --out ${mine}: also holds files factorgen did not write (a.txt, metrics.jsonl); --overwrite removes only factorgen's outputs, so move them or choose another folder`,
    ]);
    expect(fs.readFileSync(path.join(mine, 'metrics.jsonl'), 'utf8')).toBe('{"step":1}\n');
    expect(fs.readdirSync(mine).sort()).toEqual(['a.txt', 'metrics.jsonl']);
    // The generator run of beforeAll was replaced by a 1-step run.
    expect(trained.code, trained.stderr).toBe(0);
    expect(readMetrics(path.join(genRun, 'metrics.jsonl')).map((r) => r.step)).toEqual([1]);
    const again = await runCliProcess(genTrain('--steps', '1', '--out', genRun));
    expect(errorLines(again.stderr)).toEqual([
      `factorgen: --out ${genRun}: already holds a generator run; pass --resume to continue it, pass --overwrite to replace it or choose another folder`,
    ]);
    expect(again.code).toBe(2);
    const samplesOverRun = await runCliProcess(sampleArgs('--out', genRun, '--overwrite'));
    expect(samplesOverRun.code).toBe(2);
    expect(errorLines(samplesOverRun.stderr)).toEqual([`factorgen: --out ${genRun}: inside the training run ${genRun}, whose checkpoint only that run writes; choose another folder`]);
  }, 120_000);
});

describe("nothing writes into a run's checkpoint but the run", () => {
  it('export --to RUN/checkpoint (or any training checkpoint) is refused and changes nothing; exports need --overwrite to replace', async () => {
    const ck = path.join(genRun, 'checkpoint');
    const before = bytesOf(ck);
    const copy = path.join(root, 'ck-copy');
    fs.cpSync(ck, copy, { recursive: true });
    const out = path.join(root, 'exported');
    const [intoRun, intoCopy, ok] = await Promise.all([
      runCliProcess(['export', '--from', genRun, '--to', ck]),
      runCliProcess(['export', '--from', genRun, '--to', copy]),
      runCliProcess(['export', '--from', genRun, '--to', out]),
    ]);
    expect(intoRun.code).toBe(2);
    expect(errorLines(intoRun.stderr)).toEqual([`factorgen: --to ${ck}: is the checkpoint being exported (--from ${genRun}); choose another folder`]);
    expect(intoCopy.code).toBe(2);
    expect(errorLines(intoCopy.stderr)).toEqual([`factorgen: --to ${copy}: holds a training checkpoint (with optimizer state), which export would replace; choose another folder`]);
    expect(ok.code, ok.stderr).toBe(0);
    const [twice, overwritten, otherRun] = await Promise.all([
      runCliProcess(['export', '--from', genRun, '--to', out]),
      runCliProcess(['export', '--from', out, '--to', path.join(root, 'exported2')]),
      runCliProcess(['export', '--from', out, '--to', ck]),
    ]);
    expect(twice.code).toBe(2);
    expect(errorLines(twice.stderr)).toEqual([`factorgen: --to ${out}: already holds a checkpoint; pass --overwrite to replace it or choose another folder`]);
    expect(overwritten.code, overwritten.stderr).toBe(0);
    expect(otherRun.code).toBe(2);
    expect(errorLines(otherRun.stderr)).toEqual([`factorgen: --to ${ck}: inside the training run ${genRun}, whose checkpoint only that run writes; choose another folder`]);
    const third = await runCliProcess(['export', '--from', genRun, '--to', out, '--overwrite']);
    expect(third.code, third.stderr).toBe(0);
    expect(bytesOf(ck)).toEqual(before);
    expect(fs.existsSync(path.join(ck, 'optimizer.safetensors'))).toBe(true);
  }, 120_000);
});

describe('output paths are checked before the work', () => {
  it('sample --out at a file, encode --out at a folder: one line, exit 2; a read-only folder is reported as read-only', async () => {
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    const [atFile, encodeAtDir] = await Promise.all([
      runCliProcess(sampleArgs('--out', file)),
      runCliProcess(['tokenizer', 'encode', '--tokenizer', path.join(root, 'tok'), '--out', root, '--backend', 'wasm']),
    ]);
    expect(atFile.code).toBe(2);
    expect(errorLines(atFile.stderr)).toEqual([`factorgen: --out ${file}: is a file, not a folder`]);
    expect(encodeAtDir.code).toBe(2);
    expect(errorLines(encodeAtDir.stderr)).toEqual([`factorgen: --out ${root}: is a folder, not a file`]);

    // Tests run as root, which ignores permission bits: the write hook fails as a read-only mount does. The generator
    // path does not exist, so reaching it would be another error: the folder is checked first.
    const ro = path.join(root, 'ro');
    const req = { generator: path.join(root, 'missing'), out: ro, perClass: 1, batch: 1, seed: '0', cfgScale: 1, temperature: 1, topK: 0, topP: 1, useCache: true };
    const e = await sampleToFolder({ ...req, io: { writeFile: () => { throw erofs(); } } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect(inCliWords(e)).toBe(`--out ${ro}: read-only (EROFS: read-only file system)`);
    const t = await openRunDir(path.join(root, 'ro-run'), 'generator', false, { io: { writeFile: () => { throw erofs(); } } }).catch((x: unknown) => x);
    expect(inCliWords(t)).toBe(`--out ${path.join(root, 'ro-run')}: read-only (EROFS: read-only file system)`);
  }, 120_000);
});
