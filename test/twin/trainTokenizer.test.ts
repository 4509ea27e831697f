/**
 * Training the tokenizer with the twin (python -m factorgen_twin.train_tokenizer), on a tiny FQGAN-style tokenizer with
 * every loss on (entropy, disentanglement, perceptual and alignment through a frozen teacher, the older symmetric
 * alignment head and an FQGAN alignment target, the PatchGAN hinge term from step 0), dead-code restarts and an EMA:
 * one step's loss terms and gradients equal factorgen's; torchrun at 2 x B equals one process at 2B; factorgen
 * reconstructs with the checkpoint the twin writes and resumes from it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { assignParams, batchIndices, flipMask, gatherImages, toFloat, type ImageDataset, type LoadedTensor } from '@factorgen/formats';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadCheckpoint, loadDataset, saveCheckpoint } from '@factorgen/io';
import { ParamStore, Rng, defaultAdamW, variableGradsByName, withoutEma } from '@factorgen/nn';
import {
  createDiscriminator, createTeacher, createTokenizer, discriminatorForward, freezeParams, gLossHinge, presetFashion, quantizerDefaults, reconstructImages, teacherFromStore,
  tokenizerForward, type TeacherConfig, type TokenizerConfig, type TokenizerConfigV1, currentConfig,
} from '@factorgen/tokenizer';
import { loadTokenizer, trainTokenizer, type TokenizerTrainConfig } from '@factorgen/pipelines';
import { psnrGlobal } from '@factorgen/eval';
import { describeWith, systemPython } from '../support/components';
import { repoRoot, runCliProcess } from '../robustness/fixtures';
import { freePort } from '../support/freePort';

const env = { ...process.env, PYTHONPATH: path.join(repoRoot, 'python'), OMP_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' };
let work: string;

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stdout = '';
    child.stdout.on('data', (d) => ((out += d), (stdout += d)));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, stdout }));
  });
}

/** Largest |a - b| over the tensors of two checkpoints (same names), and the largest |a|. */
function maxDiff(a: Map<string, LoadedTensor>, b: Map<string, LoadedTensor>, skip = (_n: string) => false): { diff: number; scale: number; name: string } {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  let [diff, scale, name] = [0, 0, ''];
  for (const [n, t] of a) {
    if (skip(n)) continue;
    const u = b.get(n)!.data;
    t.data.forEach((x, i) => {
      scale = Math.max(scale, Math.abs(x));
      if (Math.abs(x - u[i]) > diff) [diff, name] = [Math.abs(x - u[i]), n];
    });
  }
  return { diff, scale, name };
}

const teacherCfg: TeacherConfig = { imageSize: 28, channels: 1, widths: [8, 16], embedDim: 16, classes: 10, normGroups: 4 };

/** 28x28 Fashion-MNIST, 14x14 grid, 2 branches of 64 and 512 codes (many of the 512 unused: restarts have work); a version-1 config, as the twin reads either. */
function configV1(): TokenizerConfigV1 {
  return {
    imageSize: 28, channels: 1, baseChannels: 8, channelMult: [1, 2], blocksPerLevel: 1, attention: true, normGroups: 4, latentChannels: 8,
    quantizer: { ...quantizerDefaults('fq', [{ size: 64, dim: 4 }, { size: 512, dim: 4 }]), entropyWeight: 0.1, disentangleWeight: 0.1 },
    factorize: 'branch', branchBlocks: 1, perceptualWeight: 0.5,
    adversarial: { weight: 0.2, startStep: 0, baseChannels: 8, layers: 2 },
    align: { subCodebook: 0, teacherDim: 16, weight: 0.3, temperature: 0.1 },
    alignTargets: [{ subCodebook: 1, teacher: 0, teacherDim: 16, weight: 0.5, layers: 1, heads: 2 }],
  };
}

/** The same, migrated to the current version (what a new run writes). */
function config(): TokenizerConfig {
  return currentConfig(configV1(), 'test config');
}

function trainCfg(steps: number): TokenizerTrainConfig {
  return {
    steps, batch: 8, lr: 2e-3, warmup: 2, minLrRatio: 0.1, clip: 1, adamw: { ...defaultAdamW, weightDecay: 0.01 }, seed: 'twin', flip: true,
    checkpointEvery: 1000, logEvery: 1, usageWindow: 2, restartDeadEvery: 2, ema: 0.9,
  };
}

describeWith('torch', 'tokenizer training with the twin (PyTorch, torchrun)', () => {
  let data: ImageDataset;
  let teacherDir: string;
  let fgRun: string;
  let teacher: ReturnType<typeof teacherFromStore>;
  let tstore: ParamStore;
  beforeAll(async () => {
    await initBackend('cpu');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-twin-tok-train-'));
    data = await loadDataset({ name: 'fashion-mnist', split: 'train' });
    // A frozen teacher with random weights: the losses only need its features and embedding to be functions of x.
    tstore = new ParamStore(new Rng('twin-teacher'));
    createTeacher(tstore, teacherCfg);
    freezeParams(tstore);
    teacher = teacherFromStore(tstore, teacherCfg);
    teacherDir = path.join(work, 'teacher', 'checkpoint');
    await saveCheckpoint(teacherDir, { kind: 'teacher', config: teacherCfg, step: 0, params: tstore.vars });
    // The run starts in factorgen (one step: config, initialization, optimizer and usage window as factorgen writes them).
    fgRun = path.join(work, 'fg');
    await trainTokenizer({ out: fgRun, resume: false, config: config(), data, teacher, teachers: [teacher], train: trainCfg(1) });
  }, 120_000);
  afterAll(() => {
    tstore?.dispose();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("init_tokenizer (the bench's twin model) names and shapes every parameter as createTokenizer does: bench/models.ts's tokenizer, UniTok's attention projection on FQGAN branches, a vq", async () => {
    const bench = { ...presetFashion('fq', 2, 256, { baseChannels: 24 }), perceptualWeight: 0, adversarial: undefined, factorize: 'projection' as const };
    const attn = { ...configV1(), quantProj: 'attn' as const, align: undefined, alignTargets: undefined, adversarial: undefined, perceptualWeight: 0 };
    const vq = { ...presetFashion('vq', 1, 64, { baseChannels: 8 }), perceptualWeight: 0, adversarial: undefined };
    const r = await run(systemPython, ['-m', 'factorgen_twin.parity', 'tokenizer-shapes', '--config', JSON.stringify([bench, attn, vq])]);
    expect(r.code, r.out).toBe(0);
    const got = JSON.parse(r.stdout) as unknown[];
    [bench, attn, vq].forEach((cfg, i) => {
      const tok = createTokenizer(cfg, 'shapes', { alignHeads: false });
      const want = Object.fromEntries([...tok.params.vars].map(([n, v]) => [n, v.shape]));
      tok.params.dispose();
      expect(got[i]).toEqual(want);
    });
  });

  // (each case starts Python and imports torch: about 3 s idle, 10 s on the loaded shared machine)
  it('a run it cannot continue as factorgen would is one line on stderr and exit 2, naming the flag and the cause', async () => {
    const fresh = path.join(work, 'fresh');
    const cases: [string[], string][] = [
      [['--out', fresh, '--steps', '3'], `factorgen_twin: --resume: the twin continues a tokenizer run that factorgen started (its flags fix the model and recipe): run \`factorgen tokenizer train --out ${fresh} --steps 1 ...\`, then this command with --resume`],
      [['--out', fgRun, '--resume', '--steps', '1'], `factorgen_twin: --steps 1: the run in ${fgRun} is already at step 1; give --steps > 1 to continue`],
      [['--out', fgRun, '--resume', '--steps', '3'], 'factorgen_twin: --teacher: the perceptual or alignment loss is on but no teacher was given'],
      [['--out', fgRun, '--resume', '--steps', '3', '--teacher', teacherDir], 'factorgen_twin: --align-target: sub-codebook 1 is aligned to teacher 0, but 0 teacher(s) were given'],
    ];
    for (const [args, line] of cases) {
      const r = await run(systemPython, ['-m', 'factorgen_twin.train_tokenizer', ...args]);
      expect([r.code, r.out.trim().split('\n')]).toEqual([2, [line]]);
    }
  });

  it("one training step from factorgen's checkpoint: every loss term and every gradient as factorgen's", async () => {
    const ck = await loadCheckpoint(path.join(fgRun, 'checkpoint'), 'tokenizer');
    const cfg = ck.config as TokenizerConfig;
    const tok = createTokenizer(cfg, 'twin');
    const disc = new ParamStore(new Rng('twin/discriminator'));
    createDiscriminator(disc, cfg.adversarial!, 1);
    const raw = withoutEma(ck.tensors);
    assignParams(tok.params.vars, new Map([...raw].filter(([n]) => !n.startsWith('disc/') && !n.startsWith('state/'))), 'tok');
    assignParams(disc.vars, new Map([...raw].filter(([n]) => n.startsWith('disc/'))), 'disc');
    // step 1's batch, as trainTokenizer draws it
    const t = trainCfg(2);
    const x = toFloat(gatherImages(data, batchIndices(data.n, t.batch, 1, t.seed), flipMask(t.batch, 1, t.seed, true)), [t.batch, 28, 28, 1]);
    const terms: Record<string, tf.Scalar> = {};
    let indices: tf.Tensor | null = null;
    const { value, grads } = variableGradsByName(() => {
      const out = tokenizerForward(tok, x, { training: true, teacher, teachers: [teacher] });
      for (const [k, v] of Object.entries(out.losses)) terms[k] = tf.keep(v);
      indices = tf.keep(out.indices);
      terms.adversarial = tf.keep(tf.mul(gLossHinge(discriminatorForward(disc, cfg.adversarial!, out.recon)), cfg.adversarial!.weight) as tf.Scalar);
      return tf.add(out.total, terms.adversarial) as tf.Scalar;
    }, tok.params.vars);
    const dump = path.join(work, 'step-dump');
    const tensors = new Map<string, tf.Tensor>([['images', x], ['indices', indices!]]);
    for (const [k, v] of Object.entries(terms)) tensors.set(`loss/${k}`, tf.reshape(v, [1]));
    for (const [k, g] of Object.entries(grads)) tensors.set(`grad/${k}`, g);
    await saveCheckpoint(dump, { kind: 'twin-parity', config: {}, step: 0, params: tensors });
    const total = (await value.data())[0];
    tf.dispose([...tensors.values(), value, ...Object.values(terms)]);
    tok.params.dispose();
    disc.dispose();
    const r = await run(systemPython, ['-m', 'factorgen_twin.parity', 'tokenizer-step', '--checkpoint', path.join(fgRun, 'checkpoint'), '--dump', dump, '--teacher', teacherDir]);
    expect(r.code, r.out).toBe(0);
    const p = JSON.parse(r.stdout) as {
      terms: Record<string, { twin: number; factorgen: number; diff: number }>; flips: number; positions: number; grads: number; twinGrads: number;
      missing: string[]; extra: string[]; worstGrad: number; worstGradName: string;
    };
    console.log(`twin tokenizer step vs factorgen: total ${total}, terms ${JSON.stringify(p.terms)}, flips ${p.flips}/${p.positions}, ` +
      `${p.grads} gradients, worst ${p.worstGrad} (${p.worstGradName}); ${JSON.stringify((p as unknown as { gradRel: unknown }).gradRel)}`);
    expect(Object.keys(p.terms).sort()).toEqual(['adversarial', 'align', 'codebook', 'commitment', 'disentangle', 'entropy', 'perceptual', 'recon']);
    // every term on: a term at 0 on both sides could not fail
    for (const [k, v] of Object.entries(p.terms)) {
      expect(Math.abs(v.factorgen), k).toBeGreaterThan(1e-4);
      expect(v.diff, k).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(v.factorgen)));
    }
    expect([p.flips, p.missing, p.extra, p.twinGrads]).toEqual([0, [], [], p.grads]);
    // float32 on both sides through ~20 layers, and the entropy softmax at temperature 1e-2 scales rounding by 100:
    // measured 7.4e-5 (cpu backend vs PyTorch 1.13 CPU); each tensor against its own largest entry (floor: 1e-3 of the largest of all)
    expect(p.worstGrad).toBeLessThanOrEqual(5e-4);
  }, 120_000);

  it('resumes the run factorgen started and ends where factorgen ends (weights, EMA, AdamW moments, discriminator, usage window); torchrun 2 x 4 equals 1 x 8; factorgen reconstructs with and resumes from the twin\'s checkpoint', async () => {
    const [fg3, one, two] = ['fg3', 'one', 'two'].map((n) => path.join(work, n));
    for (const d of [fg3, one, two]) fs.cpSync(fgRun, d, { recursive: true });
    // factorgen's own continuation to step 3 (a restart at step 2: usageWindow 2, restartDeadEvery 2)
    await trainTokenizer({ out: fg3, resume: true, config: config(), data, teacher, teachers: [teacher], train: trainCfg(3) });
    const flags = ['--resume', '--steps', '3', '--teacher', teacherDir, '--align-target', `1:${teacherDir}`];
    const r1 = await run(systemPython, ['-m', 'factorgen_twin.train_tokenizer', '--out', one, ...flags]);
    expect(r1.code, r1.out).toBe(0);
    const port = await freePort();
    // Debian's torchrun crashes at start without --redirects/--tee (its log-redirect default).
    const r2 = await run('torchrun', ['--nproc_per_node', '2', '--master_port', port, '--redirects', '2', '--tee', '1', '-m', 'factorgen_twin.train_tokenizer', '--out', two, ...flags]);
    expect(r2.code, r2.out).toBe(0);
    const [a, b, c] = await Promise.all([fg3, one, two].map((d) => loadCheckpoint(path.join(d, 'checkpoint'), 'tokenizer')));
    for (const ck of [b, c]) {
      expect([ck.format, ck.step, ck.optimizer!.step, (ck.extra as { discStep: number }).discStep]).toEqual([2, 3, 3, 3]);
      expect((ck.extra as { train: { emaWarmup: boolean; batch: number } }).train).toMatchObject({ emaWarmup: true, batch: 8 });
    }
    const isState = (n: string) => n.startsWith('state/');
    const report = (what: string, x: typeof a, y: typeof a) => {
      const w = maxDiff(x.tensors, y.tensors, isState);
      const m = maxDiff(x.optimizer!.m, y.optimizer!.m);
      const v = maxDiff(x.optimizer!.v, y.optimizer!.v);
      // Usage window: the indices of steps 2 and 3 (2 x 8 x 196 positions x 2 sub-codebooks). A restarted code is a
      // copy of one encoder output, so the next batch has near-ties that rounding may break either way.
      const wa = x.tensors.get('state/usageWindow')!.data;
      const wb = y.tensors.get('state/usageWindow')!.data;
      let flips = 0;
      for (let i = 0; i < wa.length; i++) if (wa[i] !== wb[i]) flips++;
      console.log(`twin tokenizer ${what} after 3 steps: weights ${JSON.stringify(w)}, m ${JSON.stringify(m)}, v ${JSON.stringify(v)}, window flips ${flips}/${wa.length}`);
      // float32 rounding through three AdamW steps (each moves a weight by about lr whatever the gradient's size)
      expect(w.diff, w.name).toBeLessThanOrEqual(5e-5 * w.scale);
      expect(m.diff, m.name).toBeLessThanOrEqual(5e-5 * m.scale);
      expect(v.diff, v.name).toBeLessThanOrEqual(5e-5 * v.scale);
      expect(wa.length).toBe(2 * 8 * 196 * 2);
      expect(flips).toBeLessThanOrEqual(Math.ceil(1e-3 * wa.length));
    };
    report('resume vs factorgen', a, b);
    report('torchrun 2 x 4 vs 1 x 8', b, c);
    const [ma, mb, mc] = [fg3, one, two].map((d) => fs.readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>));
    expect(mb.map((m) => m.step)).toEqual([1, 2, 3]);
    expect([mb[2].restarted, mc[2].processes]).toEqual([undefined, 2]);
    expect(mb[1].restarted).toBe(ma[1].restarted);
    expect(mb[1].restarted).toBeGreaterThan(0);
    for (const k of ['loss', 'recon', 'entropy', 'align', 'perceptual', 'adversarial', 'discriminator']) {
      expect(Math.abs(mb[2][k] - ma[2][k]), k).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(ma[2][k])));
      expect(Math.abs(mc[2][k] - mb[2][k]), k).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(mb[2][k])));
    }

    // factorgen reconstructs with the twin's checkpoint (the EMA weights) and continues its run
    const out = path.join(work, 'recon');
    const rc = await runCliProcess(['tokenizer', 'reconstruct', '--tokenizer', path.join(two, 'checkpoint'), '--limit', '16', '--grid', '4', '--out', out, '--backend', 'cpu']);
    expect(rc.code, rc.stderr).toBe(0);
    const m = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')) as { psnrGlobalMse: number; images: number };
    expect(m.images).toBe(16);
    const pt = m.psnrGlobalMse;
    // factorgen's own run, reconstructed in this process as the CLI does
    const test = await loadDataset({ name: 'fashion-mnist', split: 'test' });
    const orig = test.images.subarray(0, 16 * 28 * 28);
    const own = await loadTokenizer(path.join(fg3, 'checkpoint'));
    const pf = psnrGlobal(orig, await reconstructImages(own.tok, orig, 16, 100));
    own.tok.params.dispose();
    console.log(`reconstruct PSNR of 16 test images: factorgen's run ${pf} dB, the twin's (torchrun, on the CLI) ${pt} dB`);
    expect(pt).toBeGreaterThan(3);
    expect(Math.abs(pt - pf)).toBeLessThanOrEqual(0.01);
    await trainTokenizer({ out: two, resume: true, config: config(), data, teacher, teachers: [teacher], train: trainCfg(4) });
    expect((await loadCheckpoint(path.join(two, 'checkpoint'), 'tokenizer')).step).toBe(4);
  }, 600_000);
});
