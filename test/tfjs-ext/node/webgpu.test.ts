/**
 * The WebGPU backend against the cpu reference, on whatever adapter `--backend webgpu` finds (in CI: a software
 * adapter, see README "GPU (WebGPU)"). A machine where no adapter starts skips these suites with one line naming what to
 * install (test/support/components.ts; under FACTORGEN_STRICT_COMPONENTS=1, as in CI, they fail instead).
 *
 * Tolerance (kernels): every compared tensor must satisfy max|webgpu - cpu| <= 1e-4 * max(1, max|cpu|). Both backends compute in
 * float32 but sum in different orders (tiled GPU reductions vs sequential loops); the rounding error of an n-term float32
 * sum is ~sqrt(n) * 6e-8 typically and n * 6e-8 at worst, so with n up to a few thousand here the typical error is
 * ~4e-6 relative and 1e-4 leaves a ~25x margin while still catching a wrong index, stride or padding (errors of O(1)).
 * Whole training steps: 1e-3 (MODEL_TOL below says why). Code indices and sampled tokens must match exactly.
 *
 * Tensors never cross backends: webgpu's synchronous read (which a move to cpu uses) does not work in Node, so every
 * case starts from plain arrays on each backend and only async reads come back.
 */
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, it } from 'vitest';
import { globalNorm, optimizerStep, initAdamState, disposeAdamState, defaultAdamW, variableGradsByName, Rng } from '@factorgen/nn';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { toFloat } from '@factorgen/formats';
import { readStepMetrics } from '@factorgen/train';
import { createTokenizer, tokenizerForward } from '@factorgen/tokenizer';
import { DeviceCodeHistogram } from '@factorgen/tokenizer';
import { createGenerator, generatorLoss } from '@factorgen/generator';
import { sample } from '@factorgen/generator';
import { WEBGPU_INSTALL_HINT, type WebGpuAdapterInfo } from '@factorgen/tfjs-ext/node';
import { cliPath, tinyDataset, tinyGeneratorConfig, tinyTokenizerConfig } from '../../robustness/fixtures';
import { componentStatus, describeWith } from '../../support/components';

type Arr = { shape: number[]; values: Float32Array | Int32Array; dtype: 'float32' | 'int32' };
type Out = { shape: number[]; values: Float32Array };

const rng = new Rng('webgpu-test');
function rand(shape: number[], lo = -1, hi = 1): Arr {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, values: Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next()), dtype: 'float32' };
}
function ints(shape: number[], values: number[]): Arr {
  return { shape, values: Int32Array.from(values), dtype: 'int32' };
}
const toTensor = (a: Arr) => tf.tensor(a.values, a.shape, a.dtype);

async function read(ts: tf.Tensor[]): Promise<Out[]> {
  const vals = await Promise.all(ts.map((t) => t.data()));
  return ts.map((t, i) => ({ shape: t.shape, values: Float32Array.from(vals[i]!) }));
}

function expectClose(got: Out, want: Out, what: string, tol = 1e-4): void {
  expect(got.shape, what).toEqual(want.shape);
  let scale = 1;
  for (const v of want.values) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < want.values.length; i++) worst = Math.max(worst, Math.abs(got.values[i]! - want.values[i]!));
  expect(Number.isFinite(worst), what).toBe(true);
  expect(worst / scale, what).toBeLessThan(tol);
}

/**
 * Whole-model gradients: 1e-3. The encoder's gradients reach it through the decoder, group norms (rsqrt of small
 * variances) and the l2-normalized quantizer lookup, where WGSL's looser precision for sqrt/inverseSqrt/division/exp
 * (2-3 ULP, vs correctly rounded JS) and the different summation orders compound: measured worst 2.8e-4 (encoder
 * conv_out) on llvmpipe via OpenGL, median 4e-6; the loss itself agreed to 7e-7 relative.
 */
const MODEL_TOL = 1e-3;

/** Runs `f` on `backend` from plain inputs; returns its outputs read back. */
async function on(backend: 'cpu' | 'webgpu', inputs: Record<string, Arr>, f: (t: Record<string, tf.Tensor>) => tf.Tensor[]): Promise<Out[]> {
  await initBackend(backend);
  const outs = tf.tidy(() => f(Object.fromEntries(Object.entries(inputs).map(([k, a]) => [k, toTensor(a)]))));
  try {
    return await read(outs);
  } finally {
    tf.dispose(outs);
  }
}

async function same(what: string, inputs: Record<string, Arr>, f: (t: Record<string, tf.Tensor>) => tf.Tensor[]): Promise<void> {
  const want = await on('cpu', inputs, f);
  const got = await on('webgpu', inputs, f);
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => expectClose(g, want[i]!, `${what} output ${i}`));
}

/** Value and gradients (wrt every input named in `wrt`) of sum(f(inputs) * dy). */
function withGrads(wrt: string[], f: (t: Record<string, tf.Tensor>) => tf.Tensor): (t: Record<string, tf.Tensor>) => tf.Tensor[] {
  return (t) => {
    const y = f(t);
    const dy = tf.tensor(Float32Array.from({ length: y.size }, (_, i) => Math.sin(i + 1)), y.shape);
    const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f({ ...t, ...Object.fromEntries(wrt.map((k, i) => [k, xs[i]!])) }), dy)));
    return [y, ...g(wrt.map((k) => t[k]!))];
  };
}

let adapter: WebGpuAdapterInfo;
// Only where an adapter starts: elsewhere describeWith skips (or in strict mode fails) every suite below.
if (componentStatus('egl').available) beforeAll(async () => {
  const info = await initBackend('webgpu');
  adapter = info.adapter!;
  process.stderr.write(`webgpu tests on: ${info.detail}\n`);
}, 120_000);

function cli(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describeWith('egl', 'choosing the webgpu backend', () => {
  it('`info --backend webgpu` names the adapter; auto takes it only when it is hardware', () => {
    const explicit = cli(['info', '--backend', 'webgpu']);
    expect(explicit.code).toBe(0);
    const first = explicit.stdout.split('\n')[0]!;
    expect(first).toMatch(/^backend: webgpu \(.*, (software|hardware), .*max buffer \d+ MiB, max storage binding \d+ MiB\)$/);
    expect(first.includes(', software, ')).toBe(adapter.software);
    const auto = cli(['info']);
    expect(auto.code).toBe(0);
    if (adapter.software) {
      expect(auto.stdout.split('\n')[0]).not.toMatch(/^backend: webgpu/);
      expect(auto.stdout).toMatch(/^webgpu: not used \(.+\); --backend webgpu also takes a software adapter$/m);
      expect(auto.stderr).toBe(''); // the probe says nothing
    } else {
      expect(auto.stdout.split('\n')[0]).toMatch(/^backend: webgpu \(/);
    }
  });

  it("`info --backend webgpu` in a terminal pipeline: the backend line comes first, none of Dawn's warnings (--verbose keeps them)", () => {
    // Through a shell pipe as a user's terminal has (Node's spawn 'pipe' is a socket, where the chatter cannot be held back).
    const both = (flags: string) => spawnSync('sh', ['-c', `"${process.execPath}" "${cliPath}" info --backend webgpu ${flags} 2>&1 | cat`], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, FACTORGEN_VERBOSE: '' } });
    const quiet = both('');
    expect(quiet.stdout.split('\n')[0]).toMatch(/^backend: webgpu \(/);
    expect(quiet.stdout).not.toMatch(/Warning|artificially reduced|Couldn't load/);
    const verbose = both('--verbose');
    expect(verbose.stdout).toMatch(/^backend: webgpu \(/m);
    // Dawn's OpenGL route (the software adapter CI uses) always warns about the reduced dynamic-buffer limits.
    if (adapter.route === 'opengl') expect(verbose.stdout).toMatch(/^Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced/m);
  });

  it('no adapter: `--backend webgpu` fails with exit 2 and one line naming what to install', () => {
    // Pinned to the OpenGL route with no EGL vendor library: nothing can start, whatever this machine has.
    const r = cli(['info', '--backend', 'webgpu'], { FACTORGEN_WEBGPU_BACKEND: 'opengl', __EGL_VENDOR_LIBRARY_FILENAMES: '/nonexistent/egl.json' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    // (Dawn itself prints a native warning about EGL above it.)
    expect(r.stderr.trim().split('\n').pop()).toBe(`factorgen: --backend webgpu: no usable WebGPU adapter (no OpenGL (EGL) adapter); install ${WEBGPU_INSTALL_HINT}`);
  });
});

describeWith('egl', 'webgpu kernels equal the cpu reference', () => {
  it('conv2d and its input and filter gradients (strides 1/2, same/valid/explicit padding)', async () => {
    const cases: [number[], number[], number, 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]]][] = [
      [[2, 7, 7, 3], [3, 3, 3, 4], 1, 'same'],
      [[2, 8, 8, 3], [3, 3, 3, 4], 2, 'same'],
      [[1, 9, 7, 2], [3, 3, 2, 5], 2, 'valid'],
      [[1, 6, 6, 2], [1, 1, 2, 3], 1, 'valid'],
      [[2, 7, 7, 2], [4, 4, 2, 3], 2, [[0, 0], [1, 2], [0, 1], [0, 0]]],
    ];
    for (const [xs, ws, s, pad] of cases) {
      await same(`conv ${xs} ${ws} s${s} ${JSON.stringify(pad)}`, { x: rand(xs), w: rand(ws) }, withGrads(['x', 'w'], (t) => tf.conv2d(t.x as tf.Tensor4D, t.w as tf.Tensor4D, s, pad)));
    }
  });

  // (No 3-D x 2-D case: tfjs's own BatchMatMul gradient gets the broadcast operand's shape wrong on every backend;
  // the models reshape to 2-D instead.)
  it('batched matMul with every transpose, and gradients', async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[3, 5, 6], [3, 6, 7], false, false],
      [[3, 6, 5], [3, 6, 7], true, false],
      [[3, 5, 6], [3, 7, 6], false, true],
      [[3, 6, 5], [3, 7, 6], true, true],
    ];
    for (const [sa, sb, ta, tb] of cases) {
      await same(`matMul ${sa} ${sb} ${ta} ${tb}`, { a: rand(sa), b: rand(sb) }, withGrads(['a', 'b'], (t) => tf.matMul(t.a!, t.b!, ta, tb)));
    }
  });

  // Ids are in range: ours always are (codebook gather gradient, code counts); out-of-range ids are dropped on cpu and
  // wasm but not on webgpu's built-in kernel. float32 only: on webgpu an int32 segment sum returns garbage.
  it('gather and its gradient (repeated ids accumulate), unsortedSegmentSum (repeated and unused ids)', async () => {
    const ids = ints([4, 6], Array.from({ length: 24 }, (_, i) => (i * 7) % 50));
    ids.values[3] = ids.values[0]!;
    await same('gather', { table: rand([50, 8]), ids }, withGrads(['table'], (t) => tf.gather(t.table!, t.ids!)));
    await same('unsortedSegmentSum', { x: rand([7, 3]), s: ints([7], [0, 2, 2, 4, 5, 2, 0]) }, (t) => [tf.unsortedSegmentSum(t.x!, t.s as tf.Tensor1D, 6)]);
    // Code counts as the usage histogram takes them (float32 ones: webgpu's int32 segment sum returns garbage).
    await same('unsortedSegmentSum counts', { s: ints([9], [1, 1, 3, 0, 1, 3, 3, 3, 2]) }, (t) => [tf.unsortedSegmentSum(tf.ones([9]), t.s as tf.Tensor1D, 5)]);
  });

  it('addN over more inputs than a shader may bind (the global gradient norm sums ~100 terms)', async () => {
    const inputs = Object.fromEntries(Array.from({ length: 23 }, (_, i) => [`t${i}`, rand([3, 2])]));
    const f = (t: Record<string, tf.Tensor>) => [tf.addN(Object.values(t)), globalNorm(t)];
    await same('addN 23', inputs, f);
    await same('addN 5', Object.fromEntries(Object.entries(inputs).slice(0, 5)), f);
  });

  it('pooling, resize, depthToSpace and strided-slice gradients', async () => {
    await same('maxPool', { x: rand([2, 6, 6, 3]) }, withGrads(['x'], (t) => tf.maxPool(t.x as tf.Tensor4D, 2, 2, 'valid')));
    await same('avgPool', { x: rand([2, 6, 6, 3]) }, withGrads(['x'], (t) => tf.avgPool(t.x as tf.Tensor4D, 2, 2, 'valid')));
    // halfPixelCenters stays false: the decoder's upsample uses the default, and webgpu's built-in gradient ignores it.
    for (const [ac, hpc] of [[false, false], [true, false]] as const) {
      await same(`resizeNN ${ac} ${hpc}`, { x: rand([2, 3, 4, 2]) }, withGrads(['x'], (t) => tf.image.resizeNearestNeighbor(t.x as tf.Tensor4D, [7, 5], ac, hpc)));
    }
    await same('depthToSpace', { x: rand([2, 2, 3, 8]) }, withGrads(['x'], (t) => tf.depthToSpace(t.x as tf.Tensor4D, 2)));
    await same('stridedSlice', { x: rand([3, 4, 2]) }, withGrads(['x'], (t) => tf.stridedSlice(t.x!, [0, 1, 0], [3, 4, 2], [1, 2, 1])));
  });

  it('a small conv net: conv s1/s2, group-norm moments, leakyRelu, depthToSpace, embedding, logSoftmax; every gradient', async () => {
    const inputs = { x: rand([3, 8, 8, 1]), c1: rand([3, 3, 1, 4]), c2: rand([3, 3, 4, 8]), w: rand([8, 5]), emb: rand([10, 8]), tok: ints([3], [2, 9, 2]) };
    await same('convnet', inputs, withGrads(['c1', 'c2', 'w', 'emb'], (t) => {
      let h = tf.leakyRelu(tf.conv2d(t.x as tf.Tensor4D, t.c1 as tf.Tensor4D, 1, 'same'), 0.2) as tf.Tensor4D;
      const { mean, variance } = tf.moments(h, [1, 2], true);
      h = tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5)));
      h = tf.relu(tf.conv2d(h, t.c2 as tf.Tensor4D, 2, 'same')); // [3,4,4,8]
      const pooled = tf.add(tf.mean(tf.depthToSpace(h, 2), [1, 2, 3]).reshape([3, 1]), tf.gather(t.emb!, t.tok!)); // [3,8]
      return tf.logSoftmax(tf.matMul(pooled, t.w!));
    }));
  });
});

/** Host copies of every trainable parameter's gradient, the loss, and any extra outputs, for one model step. */
type StepRead = { loss: number; grads: Map<string, Out>; extra: Out[] };

async function readStep(value: tf.Scalar, grads: tf.NamedTensorMap, extra: tf.Tensor[]): Promise<StepRead> {
  const names = Object.keys(grads).sort();
  const outs = await read([value, ...names.map((n) => grads[n]!), ...extra]);
  tf.dispose([value, ...Object.values(grads), ...extra]);
  return { loss: outs[0]!.values[0]!, grads: new Map(names.map((n, i) => [n, outs[i + 1]!])), extra: outs.slice(1 + names.length) };
}

function expectSameStep(got: StepRead, want: StepRead): void {
  expect(Math.abs(got.loss - want.loss) / Math.max(1, Math.abs(want.loss))).toBeLessThan(1e-5);
  expect([...got.grads.keys()]).toEqual([...want.grads.keys()]);
  expect(want.grads.size).toBeGreaterThan(10);
  for (const [n, g] of want.grads) expectClose(got.grads.get(n)!, g, `gradient of ${n}`, MODEL_TOL);
}

describeWith('egl', 'one training step of the real models equals cpu', () => {
  it('tokenizer (fq, 2 sub-codebooks): loss, code indices, every gradient', async () => {
    const data = tinyDataset(4);
    const step = async (backend: 'cpu' | 'webgpu') => {
      await initBackend(backend);
      const tok = createTokenizer(tinyTokenizerConfig(), 'webgpu-eq');
      try {
        const x = toFloat(data.images, [4, 8, 8, 1]);
        let indices: tf.Tensor | null = null;
        const { value, grads } = variableGradsByName(() => {
          const out = tokenizerForward(tok, x, { training: true, rng: new Rng('tok-step') });
          indices = tf.keep(out.indices);
          return out.total;
        }, tok.params.trainable());
        x.dispose();
        return await readStep(value, grads, [indices!]);
      } finally {
        tok.params.dispose();
      }
    };
    const want = await step('cpu');
    const got = await step('webgpu');
    expectSameStep(got, want);
    expect(Array.from(got.extra[0]!.values)).toEqual(Array.from(want.extra[0]!.values));
  });

  it('generator (AR head, dropout and class dropout on): loss, every gradient', async () => {
    const cfg = tinyGeneratorConfig();
    const tokens = Int32Array.from({ length: 4 * 16 * 2 }, (_, i) => (i * 5 + (i >> 3)) % 16);
    const labels = Int32Array.from([0, 1, 2, 1]);
    const step = async (backend: 'cpu' | 'webgpu') => {
      await initBackend(backend);
      const gen = perturbed(createGenerator(cfg, 'webgpu-eq'));
      try {
        const tokT = tf.tensor3d(tokens, [4, 16, 2], 'int32');
        const { value, grads } = variableGradsByName(() => generatorLoss(gen, tokT, labels, { training: true, rng: new Rng('gen-step') }).loss, gen.params.trainable());
        tokT.dispose();
        return await readStep(value, grads, []);
      } finally {
        gen.params.dispose();
      }
    };
    expectSameStep(await step('webgpu'), await step('cpu'));
  });
});

/** Fresh models have zero output layers (uniform logits, zero gradients upstream): add the same host noise everywhere. */
function perturbed<G extends { params: { vars: Map<string, tf.Variable> } }>(gen: G): G {
  const r = new Rng('perturb');
  for (const v of gen.params.vars.values()) tf.tidy(() => v.assign(tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => r.normal() * 0.3), v.shape))));
  return gen;
}

describeWith('egl', 'webgpu sampling and memory', () => {
  it('cached and uncached sampling draw the same tokens (guidance, top-k, top-p)', async () => {
    await initBackend('webgpu');
    const gen = perturbed(createGenerator(tinyGeneratorConfig({ gridH: 3, gridW: 3 }), 'webgpu-sample'));
    try {
      const opts = { cfgScale: 2, temperature: 1, topK: 6, topP: 0.9 };
      const labels = Int32Array.from([0, 2]);
      const a = await sample(gen, labels, { ...opts, rng: new Rng('s'), useCache: true });
      const b = await sample(gen, labels, { ...opts, rng: new Rng('s'), useCache: false });
      expect(Array.from(a)).toEqual(Array.from(b));
      const c = await sample(gen, labels, { ...opts, rng: new Rng('other'), useCache: true });
      expect(Array.from(c)).not.toEqual(Array.from(a));
    } finally {
      gen.params.dispose();
    }
  });

  it('tf.memory() stays flat over training steps (tensors and GPU bytes)', async () => {
    await initBackend('webgpu');
    const tok = createTokenizer(tinyTokenizerConfig(), 'webgpu-mem');
    const opt = initAdamState();
    const hist = new DeviceCodeHistogram([16, 16], 0);
    const data = tinyDataset(4);
    const seen: [number, number | undefined][] = [];
    try {
      for (let s = 0; s < 4; s++) {
        const x = toFloat(data.images, [4, 8, 8, 1]);
        let indices: tf.Tensor | null = null;
        const { loss, gradNorm } = optimizerStep(() => {
          const out = tokenizerForward(tok, x, { training: true, rng: new Rng(`mem${s}`) });
          indices = tf.keep(out.indices);
          return out.total;
        }, tok.params.vars, opt, defaultAdamW, 1e-3, 1);
        hist.add(indices!);
        tf.dispose([x, indices!]);
        const { bad } = await readStepMetrics({ loss, gradNorm }, s === 3);
        expect(bad).toBeNull();
        const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
        seen.push([m.numTensors, m.numBytesInGPU]);
      }
      expect(seen[3]).toEqual(seen[1]);
      expect(seen[2]).toEqual(seen[1]);
    } finally {
      hist.dispose();
      disposeAdamState(opt);
      tok.params.dispose();
    }
  });
});
