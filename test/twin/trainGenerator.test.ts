/**
 * Training with the twin (python -m factorgen_twin.train_generator): its defaults are the CLI's; it resumes a run that
 * factorgen started and continues it as factorgen does; under torchrun (gloo, 2 processes) it equals one process at the
 * same global batch; and factorgen samples from the checkpoint it writes.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assignParams, type LoadedTensor } from '@factorgen/formats';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadCheckpoint } from '@factorgen/io';
import { withoutEma } from '@factorgen/nn';
import { createGenerator, makeGeneratorConfig, type GeneratorConfig } from '@factorgen/generator';
import { evaluateLoss, trainGenerator } from '@factorgen/pipelines';
import { readTokenFile } from '@factorgen/io';
import { describeWith, systemPython } from '../support/components';
import { cliPath, makeTokenFile, makeTokenizer, repoRoot, runCliProcess } from '../robustness/fixtures';
import { freePort } from '../support/freePort';

const env = { ...process.env, PYTHONPATH: path.join(repoRoot, 'python'), OMP_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' };
let work: string;

/** Runs a command to completion (async, so vitest's timers keep running); resolves with its exit code and output. */
function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

const twinTrain = (args: string[]) => run(systemPython, ['-m', 'factorgen_twin.train_generator', ...args]);

/** Largest |a - b| over every tensor of two checkpoints (same names required), and the largest |a|. */
function maxDiff(a: Map<string, LoadedTensor>, b: Map<string, LoadedTensor>): { diff: number; scale: number; name: string } {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  let diff = 0;
  let scale = 0;
  let name = '';
  for (const [n, t] of a) {
    const u = b.get(n)!.data;
    t.data.forEach((x, i) => {
      scale = Math.max(scale, Math.abs(x));
      if (Math.abs(x - u[i]) > diff) [diff, name] = [Math.abs(x - u[i]), n];
    });
  }
  return { diff, scale, name };
}

describeWith('torch', 'generator training with the twin (PyTorch, torchrun)', () => {
  let tokDir: string;
  let tokensFile: string;
  beforeAll(async () => {
    await initBackend('cpu');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-twin-train-'));
    tokDir = await makeTokenizer(path.join(work, 'tok'), 'twin', 2);
    tokensFile = path.join(work, 'train.tokens');
    await makeTokenFile(tokDir, tokensFile);
  });
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("defaults are `factorgen generator train`'s (the cli preset of packages/generator/src/presets.json, which the twin reads, against the CLI's --help)", () => {
    const defaults = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'packages/generator/src/presets.json'), 'utf8')) as { cli: Record<string, unknown> }).cli;
    const help = spawnSync(process.execPath, [cliPath, 'generator', 'train', '--help'], { encoding: 'utf8' }).stdout;
    // --help prints defaults as typed (3000, 0.05, 2d, 0 for the string seed "0"): compare their text
    const shown = (flag: string): string => {
      const m = new RegExp(`--${flag} <[^>]+>((?:(?!\\n  --)[\\s\\S])*?)default:\\s*([^)]+)\\)`).exec(help);
      if (!m) throw new Error(`--${flag}: no default in --help`);
      return m[2].replace(/\s+/g, ' ').trim();
    };
    const flags: [string, string][] = [
      ['steps', 'steps'], ['batch', 'batch'], ['lr', 'lr'], ['warmup', 'warmup'], ['weight-decay', 'weightDecay'], ['clip', 'clip'],
      ['seed', 'seed'], ['checkpoint-every', 'checkpointEvery'], ['log-every', 'logEvery'], ['width', 'width'], ['depth', 'depth'],
      ['heads', 'heads'], ['head-mode', 'headMode'], ['head-layers', 'headLayers'], ['dropout', 'dropout'], ['class-dropout', 'classDropout'],
      ['rope', 'rope'], ['class-rope', 'classRope'], ['ema', 'ema'], ['val-every', 'valEvery'], ['val-limit', 'valLimit'],
    ];
    for (const [flag, key] of flags) expect(shown(flag), flag).toBe(String(defaults[key]));
    // the values issue 23 set, so that a stale JSON cannot pass against a stale --help
    expect([defaults.weightDecay, defaults.headLayers, defaults.classRope]).toEqual([0.05, 3, 'identity']);
    expect(help).toContain('SwiGLU hidden size (default 3 x width)');
    expect(defaults.mlpHiddenPerWidth).toBe(3);
  });

  it('a bad flag or input is one line on stderr and exit 2, naming the flag and the cause', async () => {
    const missing = path.join(work, 'missing.tokens');
    const cases: [string[], string][] = [
      [['--tokens', missing, '--out', path.join(work, 'bad')], `factorgen_twin: --tokens ${missing}: no such file`],
      [['--tokens', tokensFile, '--out', path.join(work, 'bad'), '--batch', '0'], 'factorgen_twin: --batch 0: must be a positive integer'],
      [['--tokens', tokensFile, '--out', path.join(work, 'bad'), '--steps', 'x'], "factorgen_twin: argument --steps: invalid int value: 'x'"],
    ];
    for (const [args, line] of cases) {
      const r = await twinTrain(args);
      expect([r.code, r.out.trim().split('\n')]).toEqual([2, [line]]);
    }
  });

  it('resumes a run factorgen started (step 2 of 4) and ends where factorgen ends: weights, EMA (warmed up, or plain for a run recorded without emaWarmup) and AdamW moments within 2e-5 of their scale', async () => {
    const tokens = readTokenFile(tokensFile);
    const h = tokens.header;
    const config = makeGeneratorConfig({
      gridH: h.gridH, gridW: h.gridW, subCodebookSizes: h.subCodebookSizes, numClasses: h.classNames.length, width: 16, depth: 2, heads: 2,
      mlpHidden: 48, headMode: 'ar', headLayers: 1, headWidth: 16, headHeads: 2, headMlpHidden: 48, dropout: 0, rope: '2d', classDropout: 0.5,
    });
    // warmup 2: the learning rates of steps 0 and 1 do not depend on the total, so a 2-step run is the first half of a 4-step one.
    const train = (steps: number) => ({
      steps, batch: 6, lr: 1e-2, warmup: 2, minLrRatio: 0.1, clip: 1, adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 },
      seed: '0', checkpointEvery: 100, logEvery: 1, valEvery: 0, valLimit: 8, ema: 0.9,
    });
    const fgRun = path.join(work, 'resume-fg');
    await trainGenerator({ out: fgRun, resume: false, config, tokens, tokensPath: tokensFile, train: train(2) });
    const twinRun = path.join(work, 'resume-twin');
    fs.cpSync(fgRun, twinRun, { recursive: true });
    // The same run as one written before EMA warm-up existed: its train settings lack emaWarmup, so both sides keep the plain average.
    const [oldFg, oldTwin] = [path.join(work, 'resume-old-fg'), path.join(work, 'resume-old-twin')];
    for (const dir of [oldFg, oldTwin]) {
      fs.cpSync(fgRun, dir, { recursive: true });
      const file = path.join(dir, 'checkpoint', 'config.json');
      const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { format: number; extra: { train: Record<string, unknown> } };
      expect([j.format, j.extra.train.emaWarmup]).toEqual([2, true]); // factorgen's format 2, a new run's warm-up
      delete j.extra.train.emaWarmup;
      fs.writeFileSync(file, JSON.stringify(j));
    }
    await trainGenerator({ out: fgRun, resume: true, config, tokens, tokensPath: tokensFile, train: train(4) });
    await trainGenerator({ out: oldFg, resume: true, config, tokens, tokensPath: tokensFile, train: train(4) });
    // Only --steps: batch, lr, warmup, weight decay, clip, seed, EMA and the model come from the run, as factorgen's --resume.
    for (const dir of [twinRun, oldTwin]) {
      const r = await twinTrain(['--tokens', tokensFile, '--out', dir, '--resume', '--steps', '4']);
      expect(r.code, r.out).toBe(0);
    }
    const compare = async (fgDir: string, twinDir: string, what: string, warmup: boolean) => {
      const a = await loadCheckpoint(path.join(fgDir, 'checkpoint'), 'generator');
      const b = await loadCheckpoint(path.join(twinDir, 'checkpoint'), 'generator');
      expect([b.format, b.step, b.optimizer!.step]).toEqual([2, 4, 4]);
      expect((b.extra as { train: { emaWarmup: boolean } }).train.emaWarmup, what).toBe(warmup);
      const w = maxDiff(a.tensors, b.tensors);
      const m = maxDiff(a.optimizer!.m, b.optimizer!.m);
      const v = maxDiff(a.optimizer!.v, b.optimizer!.v);
      console.log(`twin resume vs factorgen after 4 steps (${what}): weights ${JSON.stringify(w)}, m ${JSON.stringify(m)}, v ${JSON.stringify(v)}`);
      expect(w.diff, w.name).toBeLessThanOrEqual(2e-5 * w.scale);
      expect(m.diff, m.name).toBeLessThanOrEqual(2e-5 * m.scale);
      expect(v.diff, v.name).toBeLessThanOrEqual(2e-5 * v.scale);
      return a.tensors;
    };
    const warm = await compare(fgRun, twinRun, 'EMA warm-up', true);
    const plain = await compare(oldFg, oldTwin, 'plain EMA', false);
    // The two averages differ (decay 0.9 vs min(0.9, (1+n)/(10+n)) = 0.25, 0.31 at steps 3, 4); the raw weights do not.
    const emaOnly = (t: Map<string, LoadedTensor>, ema: boolean) => new Map([...t].filter(([n]) => n.startsWith('ema/') === ema));
    expect(maxDiff(emaOnly(warm, false), emaOnly(plain, false)).diff).toBe(0);
    const gap = maxDiff(emaOnly(warm, true), emaOnly(plain, true));
    expect(gap.diff).toBeGreaterThan(1e-2 * gap.scale);
    // The twin's metrics continue factorgen's: steps 3 and 4 appended to its metrics.jsonl.
    const steps = fs.readFileSync(path.join(twinRun, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([1, 2, 3, 4]);
    // A setting that contradicts the run is refused in one line, as factorgen refuses it; so is a --steps already reached.
    const bad = await twinTrain(['--tokens', tokensFile, '--out', twinRun, '--resume', '--steps', '6', '--lr', '0.5', '--width', '32']);
    expect([bad.code, bad.out.trim()]).toEqual([2,
      `factorgen_twin: --resume: --lr 0.5 (trained with 0.01), --width 32 (trained with 16) contradict the run in ${twinRun}; ` +
        'a resumed run keeps its settings: leave these flags out, or start a new run in another folder']);
    const done = await twinTrain(['--tokens', tokensFile, '--out', twinRun, '--resume', '--steps', '4']);
    expect([done.code, done.out.trim()]).toEqual([2, `factorgen_twin: --steps 4: the run in ${twinRun} is already at step 4; give --steps > 4 to continue`]);
  });

  it('torchrun --nproc_per_node 2 (gloo) at global batch 8 equals 1 process at batch 8 (dropout and label drop on); validation loss as factorgen computes it; factorgen samples the checkpoint', async () => {
    // --head-layers 1 --weight-decay 0: the model and recipe this bound was measured on (the defaults before issue 23). With
    // the new defaults (3 head layers, decay 0.05) the gap measured 1.5e-5 of the scale here, over this bound (6.6e-6 on
    // random tokens; 3 head layers alone 2.3e-6, decay 0.05 alone 2.9e-6, the old pair 1.4e-6).
    const common = ['--tokens', tokensFile, '--steps', '3', '--batch', '8', '--width', '16', '--depth', '1', '--heads', '2', '--dropout', '0.2',
      '--class-dropout', '0.3', '--lr', '1e-2', '--warmup', '1', '--ema', '0.5', '--log-every', '1', '--head-layers', '1', '--weight-decay', '0'];
    const one = await twinTrain([...common, '--out', path.join(work, 'one'), '--val', tokensFile, '--val-every', '2']);
    expect(one.code, one.out).toBe(0);
    // Validation as factorgen's evaluateLoss on the raw (not EMA) weights, at steps 2 and 3 (the end).
    const oneCk = await loadCheckpoint(path.join(work, 'one', 'checkpoint'), 'generator');
    // A new twin run records what a new factorgen run does: EMA warm-up on, the class token's rotary embedding.
    expect([oneCk.format, (oneCk.extra as { train: { emaWarmup: boolean } }).train.emaWarmup, (oneCk.config as GeneratorConfig).classRope]).toEqual([2, true, 'identity']);
    const raw = createGenerator(oneCk.config as GeneratorConfig, 'val');
    assignParams(raw.params.vars, withoutEma(oneCk.tensors), 'one');
    const expected = await evaluateLoss(raw, readTokenFile(tokensFile), 8, 2000);
    raw.params.dispose();
    const vals = fs.readFileSync(path.join(work, 'one', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; valLoss?: number })
      .filter((m) => m.valLoss !== undefined);
    expect(vals.map((m) => m.step)).toEqual([2, 3]);
    console.log(`twin valLoss ${vals[1].valLoss} vs factorgen evaluateLoss ${expected}`);
    expect(Math.abs(vals[1].valLoss! - expected)).toBeLessThanOrEqual(1e-5 * expected);
    const port = await freePort();
    // Debian's torchrun crashes at start without --redirects/--tee (its log-redirect default).
    const two = await run('torchrun', ['--nproc_per_node', '2', '--master_port', port, '--redirects', '2', '--tee', '1', '-m', 'factorgen_twin.train_generator', ...common, '--out', path.join(work, 'two')]);
    expect(two.code, two.out).toBe(0);
    const a = await loadCheckpoint(path.join(work, 'one', 'checkpoint'), 'generator');
    const b = await loadCheckpoint(path.join(work, 'two', 'checkpoint'), 'generator');
    const w = maxDiff(a.tensors, b.tensors);
    console.log(`twin DDP 2 x 4 vs 1 x 8 after 3 steps: ${JSON.stringify(w)}`);
    expect(w.diff, w.name).toBeLessThanOrEqual(1e-5 * w.scale);
    const twoLast = JSON.parse(fs.readFileSync(path.join(work, 'two', 'metrics.jsonl'), 'utf8').trim().split('\n').pop()!) as { processes: number; loss: number };
    const oneLast = JSON.parse(fs.readFileSync(path.join(work, 'one', 'metrics.jsonl'), 'utf8').trim().split('\n').pop()!) as { processes: number; loss: number };
    expect([twoLast.processes, oneLast.processes]).toEqual([2, 1]);
    expect(Math.abs(twoLast.loss - oneLast.loss)).toBeLessThanOrEqual(1e-5 * oneLast.loss);

    const out = path.join(work, 'samples');
    const s = await runCliProcess(['sample', '--generator', path.join(work, 'two', 'checkpoint'), '--per-class', '1', '--out', out, '--backend', 'cpu']);
    expect(s.code, s.stderr).toBe(0);
    const pngs = fs.readdirSync(out, { recursive: true }).filter((f) => String(f).endsWith('.png'));
    expect(pngs.length).toBe(3 + 1); // one image for each of the 3 classes, and grid.png
  });
});
