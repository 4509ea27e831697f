/**
 * Every loader the CLI reaches says in one line which flag, which path and what is wrong, in words (no errno codes,
 * no stack traces), and exits 2; metrics.jsonl and the site/report writers too; `eval samples` warns when its FID
 * rests on too few samples. Exact lines, as the user sees them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsLog } from '@factorgen/train';
import { UserError } from '@factorgen/tfjs-ext';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { serveSite } from '@factorgen/web';
import { smallSampleFidWarning } from '@factorgen/pipelines';
import { errorLines, expectOneLine, makeImageFolder, makePipeline, makeTokenFile, runCliProcess } from '../robustness/fixtures';

let root: string;
let afile: string;
let empty: string;
let nosuch: string;
let images: string;
let tokens: string;
let tokRun: string;
let genRun: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-errwords-'));
  afile = path.join(root, 'afile');
  fs.writeFileSync(afile, 'x');
  empty = path.join(root, 'empty');
  fs.mkdirSync(empty);
  nosuch = path.join(root, 'nosuch');
  images = path.join(root, 'images');
  await makeImageFolder(images, { a: 10, b: 10 }); // every 10th image of a class is test
  await initBackend('cpu');
  ({ tokRun, tokensFile: tokens, genRun } = await makePipeline(root));
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const R = (name: string) => path.join(root, name);
// The tiny image folder: loads in milliseconds, so each case fails at the loader it is about.
const folderData = () => ['--dataset', 'folder', '--data', images, '--size', '8', '--channels', '1', '--backend', 'wasm'];

describe('loaders name the flag, the path and the cause', () => {
  it('--teacher, --align-target, --data, --samples, --tokenizer, --val', async () => {
    const tokTrain = (out: string, ...args: string[]) => ['tokenizer', 'train', '--out', R(out), '--steps', '1', ...args];
    const [teacherMissing, teacherFile, teacherEmpty, alignMissing, fmMissing, fmEmpty, emojiFile, folderFile, samplesMissing, samplesFile, tokUnder, tokEmpty, valMissing] =
      await Promise.all([
        runCliProcess(tokTrain('o1', ...folderData(), '--teacher', nosuch)),
        runCliProcess(tokTrain('o2', ...folderData(), '--teacher', afile)),
        runCliProcess(tokTrain('o3', ...folderData(), '--teacher', empty)),
        runCliProcess(tokTrain('o4', ...folderData(), '--align-target', `1:${nosuch}`)),
        runCliProcess(tokTrain('o5', '--data', nosuch, '--backend', 'wasm')),
        runCliProcess(tokTrain('o6', '--data', empty, '--backend', 'wasm')),
        runCliProcess(tokTrain('o7', '--dataset', 'emoji', '--data', afile, '--backend', 'wasm')),
        runCliProcess(tokTrain('o8', '--dataset', 'folder', '--data', afile, '--backend', 'wasm')),
        runCliProcess(['eval', 'samples', '--samples', nosuch, ...folderData()]),
        runCliProcess(['eval', 'samples', '--samples', afile, ...folderData()]),
        runCliProcess(['tokenizer', 'encode', '--tokenizer', path.join(afile, 'ck'), '--out', R('x.tokens'), ...folderData()]),
        runCliProcess(['tokenizer', 'encode', '--tokenizer', empty, '--out', R('y.tokens'), ...folderData()]),
        runCliProcess(['generator', 'train', '--out', R('g1'), '--tokens', tokens, '--val', path.join(root, 'v.tokens'), '--backend', 'wasm']),
      ]);
    const teacherHint = '(a `factorgen teacher train` run or a tfjs model folder)';
    expectOneLine(teacherMissing, 2, `factorgen: --teacher ${nosuch}: no such folder ${teacherHint}`);
    expectOneLine(teacherFile, 2, `factorgen: --teacher ${afile}: is a file, expected a folder ${teacherHint}`);
    expectOneLine(teacherEmpty, 2, `factorgen: --teacher ${empty}: neither a factorgen teacher checkpoint nor a tfjs model folder (no checkpoint/config.json, config.json or model.json)`);
    expectOneLine(alignMissing, 2, `factorgen: --align-target ${nosuch}: no such folder ${teacherHint}`);
    expectOneLine(fmMissing, 2, `factorgen: --data ${nosuch}: no such folder (Fashion-MNIST IDX .gz files are expected here)`);
    expectOneLine(fmEmpty, 2, `factorgen: --data ${empty}: train-images-idx3-ubyte.gz: no such file (Fashion-MNIST IDX .gz files are expected here)`);
    expectOneLine(emojiFile, 2, `factorgen: --data ${afile}: is a file, expected a folder (emoji32.json and emoji32.bin.gz are expected here)`);
    expectOneLine(folderFile, 2, `factorgen: --data ${afile}: is a file, expected a folder (images are expected in ${afile}/<class>/*.png)`);
    expectOneLine(samplesMissing, 2, `factorgen: --samples ${nosuch}: no such folder`);
    expectOneLine(samplesFile, 2, `factorgen: --samples ${afile}: is a file, expected a folder`);
    expectOneLine(tokUnder, 2, `factorgen: --tokenizer ${path.join(afile, 'ck')}: ${afile} is a file, not a folder`);
    expectOneLine(tokEmpty, 2, `factorgen: --tokenizer ${empty}: config.json: missing (not a factorgen checkpoint folder)`);
    expectOneLine(valMissing, 2, `factorgen: --val ${path.join(root, 'v.tokens')}: no such file`);
    for (const d of ['o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7', 'o8', 'x.tokens', 'y.tokens']) expect(fs.existsSync(R(d)), d).toBe(false);
  }, 180_000);

  it('export --from / --to and report runs', async () => {
    const noMetrics = R('run-metrics-folder');
    fs.mkdirSync(path.join(noMetrics, 'metrics.jsonl'), { recursive: true });
    const [fromMissing, fromFile, fromEmpty, toUnder, reportMissing, reportFolder] = await Promise.all([
      runCliProcess(['export', '--from', nosuch, '--to', R('e1')]),
      runCliProcess(['export', '--from', afile, '--to', R('e2')]),
      runCliProcess(['export', '--from', empty, '--to', R('e3')]),
      runCliProcess(['export', '--from', tokRun, '--to', path.join(afile, 'x')]),
      runCliProcess(['report', nosuch, '--out', R('r1.html')]),
      runCliProcess(['report', noMetrics, '--out', R('r2.html')]),
    ]);
    expectOneLine(fromMissing, 2, `factorgen: --from ${nosuch}: no such folder`);
    expectOneLine(fromFile, 2, `factorgen: --from ${afile}: is a file, expected a folder`);
    expectOneLine(fromEmpty, 2, `factorgen: --from ${empty}: holds no checkpoint (no config.json or checkpoint/config.json)`);
    expectOneLine(toUnder, 2, `factorgen: --to ${path.join(afile, 'x')}: ${afile} is a file, not a folder`);
    expectOneLine(reportMissing, 2, `factorgen: ${nosuch}: no such folder (a run folder with metrics.jsonl)`);
    expectOneLine(reportFolder, 2, `factorgen: ${path.join(noMetrics, 'metrics.jsonl')}: is a folder, expected a file`);
    for (const d of ['e1', 'e2', 'e3', 'r1.html', 'r2.html']) expect(fs.existsSync(R(d)), d).toBe(false);
    expect(fs.readFileSync(afile, 'utf8')).toBe('x');
  }, 120_000);
});

describe('a tokenizer path recorded in a file that is gone', () => {
  it('decode, sample and web build without --tokenizer name the flag, the file that recorded the path, and the path', async () => {
    // a token file and a generator whose recorded tokenizer folder was moved away afterwards
    const moved = R('tok-moved');
    fs.cpSync(path.join(tokRun, 'checkpoint'), moved, { recursive: true });
    const lost = R('lost.tokens');
    await makeTokenFile(moved, lost);
    fs.rmSync(moved, { recursive: true });
    const genLost = R('gen-lost');
    fs.cpSync(path.join(genRun, 'checkpoint'), path.join(genLost, 'checkpoint'), { recursive: true });
    const genConfig = path.join(genLost, 'checkpoint', 'config.json');
    const j = JSON.parse(fs.readFileSync(genConfig, 'utf8')) as { extra: { tokenizerPath: string } };
    j.extra.tokenizerPath = moved;
    fs.writeFileSync(genConfig, JSON.stringify(j));
    const [decode, sample, site] = await Promise.all([
      runCliProcess(['tokenizer', 'decode', '--tokens', lost, '--out', R('d-lost'), '--backend', 'wasm']),
      runCliProcess(['sample', '--generator', genLost, '--per-class', '1', '--out', R('s-lost'), '--backend', 'wasm']),
      runCliProcess(['web', 'build', '--generator', genLost, '--out', R('w-lost')]),
    ]);
    expectOneLine(decode, 2, `factorgen: --tokenizer: not given, and the tokenizer recorded in ${lost} (${moved}) was not found; pass --tokenizer DIR`);
    const genLine = `factorgen: --tokenizer: not given, and the tokenizer recorded in ${genConfig} (${moved}) was not found, nor ${path.join(root, 'tokenizer')}; pass --tokenizer DIR`;
    expectOneLine(sample, 2, genLine);
    expectOneLine(site, 2, genLine);
    for (const d of ['d-lost', 's-lost']) expect(fs.existsSync(R(d)), d).toBe(false);
  }, 120_000);
});

describe('writers say the cause in words', () => {
  it('metrics.jsonl that cannot be opened or written: the file and the cause; on --resume the flag, and the checkpoint stays', async () => {
    const folder = R('metrics-is-a-folder');
    fs.mkdirSync(folder);
    const err = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      throw new Error('no error');
    };
    const opened = err(() => new MetricsLog(folder, false));
    expect(opened).toBeInstanceOf(UserError);
    expect((opened as UserError).message).toBe(`${folder}: is a folder, expected a file`);
    const file = R('metrics.jsonl');
    const log = new MetricsLog(file, false);
    fs.rmSync(file);
    fs.mkdirSync(file);
    expect((err(() => log.write({ step: 1 })) as UserError).message).toBe(`${file}: is a folder, expected a file`);

    const metrics = path.join(genRun, 'metrics.jsonl');
    const weights = fs.readFileSync(path.join(genRun, 'checkpoint', 'model.safetensors'));
    fs.rmSync(metrics);
    fs.mkdirSync(metrics);
    const r = await runCliProcess(['generator', 'train', '--resume', '--out', genRun, '--steps', '3', '--backend', 'wasm']);
    expectOneLine(r, 2, `factorgen: --out ${genRun}: metrics.jsonl: is a folder, expected a file`);
    expect(fs.readFileSync(path.join(genRun, 'checkpoint', 'model.safetensors')).equals(weights)).toBe(true);
  }, 60_000);

  it('web build --out under a file is refused before any work; serve on an address that is not this machine\'s names --host', async () => {
    const r = await runCliProcess(['web', 'build', '--generator', genRun, '--out', path.join(afile, 'site')]);
    expectOneLine(r, 2, `factorgen: --out ${path.join(afile, 'site')}: ${afile} is a file, not a folder`);
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
    await expect(serveSite(new Map(), { port: 0, host: '192.0.2.1' })).rejects.toThrow(new UserError('--host 192.0.2.1: not an address of this machine'));
  }, 60_000);
});

describe('eval samples at small n', () => {
  it('warns in one line below max(500, feature dimension) samples, naming the floor at the same n', async () => {
    expect(smallSampleFidWarning(500, 160, 14)).toBeNull();
    expect(smallSampleFidWarning(600, 640, 3)).toBe(
      'warning: FID of only 600 samples (fewer than 640) is mostly small-sample bias: real images score 3.0 at this n (realFloor, same n); compare fid with realFloor.fid or with FIDs of 600 samples, not with FIDs of other sample counts',
    );
    // 10 Fashion-MNIST-sized samples scored by the committed evaluator (160-d features)
    const samples = R('samples10');
    for (let c = 0; c < 10; c++) {
      fs.mkdirSync(path.join(samples, String(c)), { recursive: true });
      await sharp(Buffer.alloc(28 * 28, c * 20), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(path.join(samples, String(c), '0000.png'));
    }
    const r = await runCliProcess(['eval', 'samples', '--samples', samples, '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { n: number; realFloor: { fid: number; n: number } };
    expect([result.n, result.realFloor.n]).toEqual([10, 10]);
    const warnings = errorLines(r.stderr).filter((l) => l.startsWith('warning: '));
    expect(warnings).toEqual([
      `warning: FID of only 10 samples (fewer than 500) is mostly small-sample bias: real images score ${result.realFloor.fid.toFixed(1)} at this n (realFloor, same n); compare fid with realFloor.fid or with FIDs of 10 samples, not with FIDs of other sample counts`,
    ]);
  }, 240_000);
});
