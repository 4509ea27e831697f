import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'apps/cli/bin/factorgen.mjs');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-compare-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

// --jobs 1: sequential, whatever the load (auto would take the free cores).
const smoke = (out: string) => ['compare', '--budget', 'smoke', '--out', out, '--backend', 'wasm', '--jobs', '1'];

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Starts the compare and kills it (SIGKILL, as kill -9) once stderr shows `marker`; resolves when it is dead. */
function killAt(args: string[], marker: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: work });
    let err = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (!killed && marker.test(err)) { killed = true; child.kill('SIGKILL'); }
    });
    child.on('exit', () => (killed ? resolve(err) : reject(new Error(`finished before ${marker}: ${err.slice(-500)}`))));
  });
}

/** report.json without what differs between reruns by design: wall-clock timing. */
const scores = (dir: string) => {
  const r = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as Record<string, unknown>;
  delete r.timing;
  return r;
};

describe('factorgen compare (smoke budget)', () => {
  it('a compare killed mid-run (kill -9 inside a training) and continued with --jobs 2 reports what an uninterrupted sequential one does, bit for bit', async () => {
    const a = path.join(work, 'a');
    const first = cli(smoke(a));
    expect(first.code, first.err.slice(-2000)).toBe(0);
    expect(first.err).toMatch(/^plan: 2 variants \(vq, fq2\) x 2 seeds = 4 runs, 21 stages \(0 done\)/m);
    const b = path.join(work, 'b');
    // Killed inside fq2 seed 1's tokenizer training, after its first checkpoint (smoke checkpoints every step).
    const log = await killAt(smoke(b), /\[17\/21\] fq2 seed 1: tokenizer[^\n]*\n(.|\n)*tokenizer 2\/4/);
    expect(log).toContain('[16/21] vq seed 1');
    expect(fs.existsSync(path.join(b, 'runs', 'fq2-s1', 'tokenizer.json'))).toBe(false);
    // Continued side by side in two processes (--jobs 2): the parts skip what is done, and the numbers equal the
    // sequential compare's (each part runs on 1 thread, as the sequential one here).
    const second = cli([...smoke(b), '--jobs', '2']);
    expect(second.code, second.err.slice(-2000)).toBe(0);
    expect(second.err).toMatch(/^plan \(shared stages\): .* 1 stages \(1 done\)/m);
    // Only fq2 seed 1 is left, so only the part that holds it starts a process.
    expect(second.err.match(/^part \d\/2: plan \(part \d of 2\): .*\(\d+ done\)/gm)).toHaveLength(1);
    expect(second.err).toMatch(/^part \d\/2: \[\d+\/\d+\] fq2 seed 1: tokenizer/m);
    expect(second.err).not.toMatch(/vq seed 0: tokenizer|fq2 seed 0: tokenizer|vq seed 1: tokenizer/);
    const ra = scores(a);
    const rb = scores(b);
    // The command line names its --out; everything else must be equal.
    (ra.meta as { command: string }).command = (rb.meta as { command: string }).command = '';
    expect(rb).toEqual(ra);
    const report = ra as { runs: unknown[]; summary: { comparisons: { verdict: string }[] } };
    expect(report.runs).toHaveLength(4);
    expect(report.summary.comparisons.map((c) => c.verdict).length).toBe(7);
    expect(fs.readFileSync(path.join(a, 'report.md'), 'utf8')).toContain('fq2 vs vq on PSNR (global MSE): ');
    const html = fs.readFileSync(path.join(a, 'report.html'), 'utf8');
    expect(html.match(/<circle /g)!.length).toBeGreaterThanOrEqual(4 * 7 - 4);
    // Each run's sample excerpt (the first 8 per class at 3x; the smoke budget draws 2 per class) is written and shown.
    for (const run of ['vq-s0', 'vq-s1', 'fq2-s0', 'fq2-s1']) expect(fs.existsSync(path.join(a, 'runs', run, 'samples.png'))).toBe(true);
    expect(html.split('<h2>Samples (the first 8 per class)</h2>')[1]!.match(/<img /g)).toHaveLength(4);

    // A finished compare run again does nothing new; side by side it starts no part process either.
    const again = cli(smoke(a));
    expect(again.code).toBe(0);
    expect(again.err).toMatch(/^plan: .* 21 stages \(21 done\)/m);
    const againJobs = cli([...smoke(b), '--jobs', '2']);
    expect(againJobs.code, againJobs.err.slice(-2000)).toBe(0);
    expect(againJobs.err).toMatch(/^plan \(shared stages\): .* 1 stages \(1 done\)/m);
    expect(againJobs.err).not.toMatch(/^part \d\/2:/m);
    expect(fs.existsSync(path.join(b, 'report.json'))).toBe(true);

    // A flag that contradicts the compare in the folder is refused in one line, and nothing there changes.
    const before = fs.readFileSync(path.join(a, 'compare.json'), 'utf8');
    const other = cli(['compare', '--budget', 'small', '--out', a, '--backend', 'wasm']);
    expect(other.code).toBe(2);
    expect(other.err.split('\n').filter((l) => l.startsWith('factorgen:'))).toEqual([
      `factorgen: --budget: ${a} holds a compare started with budget "smoke" (asked: "small"); rerun with the same flags to continue it, or choose another --out`,
    ]);
    const fewer = cli([...smoke(a), '--seeds', '1']);
    expect(fewer.code).toBe(2);
    expect(fewer.err).toContain(`factorgen: --seeds: ${a} holds a compare started with seeds 2 (asked: 1)`);
    expect(fs.readFileSync(path.join(a, 'compare.json'), 'utf8')).toBe(before);
  }, 600_000);

  it('unknown variants and bits out of range are refused before anything is written', () => {
    const out = path.join(work, 'bad');
    const v = cli([...smoke(out), '--variants', 'vq,fq9']);
    expect(v.code).toBe(2);
    expect(v.err).toContain('factorgen: --variants: unknown variant "fq9" (choose from vq, vq-2v, fq2-same-bits, fq2, fq2-dis, fq2-dis-align, unitok, fq2-parallel)');
    const b = cli([...smoke(out), '--bits', '17']);
    expect(b.code).toBe(2);
    expect(b.err).toContain('factorgen: --bits 17: must be between 2 and 16');
    expect(fs.existsSync(out)).toBe(false);
  }, 120_000);
});
