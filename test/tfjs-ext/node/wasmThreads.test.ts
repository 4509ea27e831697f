/**
 * --threads: the Node shim for tfjs-backend-wasm's threaded SIMD build (packages/tfjs-ext/src/node/wasmThreads.ts), tested
 * against the pinned tfjs-backend-wasm. Results are bit-identical to the stock single-thread build at every thread
 * count (kernels, gradients, training through the CLI), so a run resumes exactly with the same or another count.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { UserError } from '@factorgen/tfjs-ext';
import { checkShimVersion, freeCores, parseThreads, WASM_THREADS_SHIM_VERSION } from '@factorgen/tfjs-ext/node';
import { errorLines, interruptCli, makeImageFolder, makeTokenFile, makeTokenizer, repoRoot, runCliProcess } from '../../robustness/fixtures';
import { thrownInCliWords } from '../../support/cliWords';

type Probe = Record<string, string | number>;

/** Runs wasmThreads.probe.ts with the stock build or the threaded build on `threads` threads. */
function probe(build: 'stock' | 'threaded', threads: number): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/tfjs-ext/node/wasmThreads.probe.ts'), build, String(threads)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Probe) : reject(new Error(`probe ${build} ${threads}: exit ${code}\n${err.slice(-2000)}`))));
  });
}

describe('wasm threads shim', () => {
  it('is written for the installed (pinned) tfjs-backend-wasm, and any other version fails with one line naming --threads', () => {
    expect(version_wasm).toBe(WASM_THREADS_SHIM_VERSION);
    expect(() => checkShimVersion(version_wasm)).not.toThrow();
    expect(thrownInCliWords(() => checkShimVersion('4.23.0'))).toBe(
      '--threads: the wasm threads shim was written for @tensorflow/tfjs-backend-wasm 4.22.0 but 4.23.0 is installed; use --threads 1 or install 4.22.0',
    );
  });

  it('threaded build on 1, 2 and 3 threads: matMul, conv2d, attention (our SIMD BatchMatMul), their gradients (the filter gradient on our grid kernel) and 3 training steps are bit-identical to the stock build', async () => {
    const [stock, t1, t2, t3] = await Promise.all([probe('stock', 1), probe('threaded', 1), probe('threaded', 2), probe('threaded', 3)]);
    expect([stock.threads, t1.threads, t2.threads, t3.threads]).toEqual([1, 1, 2, 3]); // the pool is not capped at cores / 2
    // Our BatchMatMul replaces the built-in on either build, and its SIMD128 kernel runs attention's products.
    for (const r of [stock, t1, t2, t3]) expect([r.batchMatMulOurs, r.smallBatchMatMulRan]).toEqual([1, 1]);
    // Our Conv2DBackpropFilter grid kernel (gemm4x8.wat) is the registered one on either build, and convGradFilter runs on it.
    for (const r of [stock, t1, t2, t3]) expect([r.convFilterGrid, r.convFilterComposite]).toEqual([1, 0]);
    // Our heap kernels (heapColumnSum.wat, heapGroupSum.wat, heapGemmTN.wat) instantiate on either build's heap (the threaded build's memory is shared).
    for (const r of [stock, t1, t2, t3]) expect([r.heapColumnSum, r.heapGroupSum, r.heapGemmTN]).toEqual([1, 1, 1]);
    const keys = ['sumLeading', 'groupStats', 'denseWeightGrad', 'matMul', 'conv', 'convGradInput', 'convGradFilter', 'attention', 'attentionGradQ', 'attentionGradK', 'attentionGradV', 'trainW1', 'trainW2'];
    for (const k of keys) expect(typeof stock[k] === 'string' && (stock[k] as string).length).toBeGreaterThan(100);
    expect(stock.trainW2).not.toBe(stock.initW2); // the steps moved the weights
    for (const r of [t1, t2, t3]) for (const k of keys) expect(r[k], k).toBe(stock[k]);
  }, 240_000);

  it('--threads parses a whole number or auto; auto is the cores the load leaves free, at least 1', () => {
    expect(parseThreads('2')).toBe(2);
    expect(parseThreads('auto')).toBe('auto');
    for (const bad of ['0', '-1', '1.5', 'two', '65', '']) {
      expect(thrownInCliWords(() => parseThreads(bad))).toBe(`--threads: "${bad}" is not a whole number from 1 to 64 or auto`);
    }
    expect(freeCores(2, 0.1)).toBe(2);
    expect(freeCores(2, 0.6)).toBe(1); // 1.4 cores free: the second is mostly busy
    expect(freeCores(2, 1.4)).toBe(1);
    expect(freeCores(2, 7)).toBe(1);
    expect(freeCores(8, 2.2)).toBe(6);
    expect(freeCores(2, 0)).toBe(2);
  });
});

let root: string;
let images: string;
let tokens: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-threads-'));
  images = path.join(root, 'images');
  await makeImageFolder(images, { a: 4, b: 4 });
  await initBackend('cpu');
  tokens = path.join(root, 'train.tokens');
  await makeTokenFile(await makeTokenizer(path.join(root, 'tok')), tokens);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const genTrain = (out: string, threads: number, ...args: string[]) =>
  ['generator', 'train', '--tokens', tokens, '--width', '64', '--depth', '2', '--heads', '4', '--batch', '8', '--log-every', '1',
    '--steps', '24', '--warmup', '2', '--backend', 'wasm', '--threads', String(threads), '--out', out, ...args];
const tokTrain = (out: string, threads: number) =>
  ['tokenizer', 'train', '--dataset', 'folder', '--data', images, '--size', '16', '--channels', '1', '--sub-codebooks', '2',
    '--codebook-size', '16', '--code-dim', '4', '--base-channels', '16', '--channel-mult', '1,2', '--no-attention', '--latent-channels', '8',
    '--batch', '8', '--steps', '3', '--log-every', '1', '--backend', 'wasm', '--threads', String(threads), '--out', out];
const weights = (run: string) => fs.readFileSync(path.join(run, 'checkpoint', 'model.safetensors'));
const checkpointStep = (run: string) => (JSON.parse(fs.readFileSync(path.join(run, 'checkpoint', 'config.json'), 'utf8')) as { step: number }).step;

describe('--threads through the CLI', () => {
  it('training on 1 and 2 threads gives the same checkpoint byte for byte; a run interrupted on 2 threads resumes exactly on 2 and on 1', async () => {
    const run = (name: string) => path.join(root, name);
    const [g1, g2, t1, t2, cut] = await Promise.all([
      runCliProcess(genTrain(run('g1'), 1)),
      runCliProcess(genTrain(run('g2'), 2)),
      runCliProcess(tokTrain(run('t1'), 1)),
      runCliProcess(tokTrain(run('t2'), 2)),
      interruptCli(genTrain(run('cut'), 2), run('cut'), 'SIGINT'),
    ]);
    for (const r of [g1, g2, t1, t2]) expect(r.code, r.stderr).toBe(0);
    expect(g2.stderr).toContain('backend: wasm (wasm simd=true, threaded build, threads=2)\n');
    expect(g1.stderr).toContain('backend: wasm (wasm simd=true)\n');
    expect(weights(run('g2')).equals(weights(run('g1')))).toBe(true);
    expect(weights(run('t2')).equals(weights(run('t1')))).toBe(true);

    expect(cut.code, cut.stderr).toBe(130);
    const k = checkpointStep(run('cut'));
    expect(k).toBeGreaterThanOrEqual(2);
    expect(k).toBeLessThan(24);
    fs.cpSync(run('cut'), run('cut1'), { recursive: true });
    const [same, other] = await Promise.all([
      runCliProcess(genTrain(run('cut'), 2, '--resume')),
      runCliProcess(genTrain(run('cut1'), 1, '--resume')),
    ]);
    for (const r of [same, other]) expect(r.code, r.stderr).toBe(0);
    expect(checkpointStep(run('cut'))).toBe(24);
    expect(weights(run('cut')).equals(weights(run('g2')))).toBe(true);
    expect(weights(run('cut1')).equals(weights(run('g2')))).toBe(true);
  }, 300_000);

  it('a bad --threads, or --threads 2 on a backend other than wasm, is one line naming the flag, exit 2', async () => {
    const [bad, cpu] = await Promise.all([
      runCliProcess(['info', '--threads', 'many']),
      runCliProcess(['info', '--backend', 'cpu', '--threads', '2']),
    ]);
    expect(bad.code).toBe(2);
    expect(errorLines(bad.stderr)).toEqual(['factorgen: --threads: "many" is not a whole number from 1 to 64 or auto']);
    expect(cpu.code).toBe(2);
    expect(errorLines(cpu.stderr)).toEqual(['factorgen: --threads 2: only the wasm backend runs on several threads here (--backend cpu); use --threads 1 or --backend wasm']);
  });
});
