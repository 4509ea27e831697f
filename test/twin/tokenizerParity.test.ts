/**
 * The tokenizer twin (python/factorgen_twin/tokenizer.py, inference path) against factorgen: code indices of real
 * Fashion-MNIST test images and the reconstruction decoded from factorgen's indices, on pretrained/tokenizer (FQGAN
 * branches, fq, linear projections) and on two freshly initialized tokenizers (UniTok's attention projection with a
 * shared latent, and a one-codebook vq).
 *
 * Indices: an argmax of cosines in float32; where the best two codes are within the two sides' rounding (~1e-6 of a
 * cosine), either may win. The test counts those flips, bounds them at 1% of the positions, and requires every flip
 * to be a near-tie in the twin (the two codes' cosines within 1e-5). Reconstructions decode the same (factorgen's)
 * indices on both sides and must agree within 1e-4 (pixels in [-1, 1], six conv levels of float32 sums).
 * Measured (cpu backend vs PyTorch 1.13 CPU): 0 flips in 3136 positions on pretrained/tokenizer, 0 in 1568 (attn, causal and bidirectional) and
 * 784 (vq); reconstruction within 1.7e-6 (pretrained, 2 x 1024 codes), 3.2e-6 (attn), 2.6e-6 (attn, bidirectional), 3.0e-6 (vq).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { loadCheckpoint, saveCheckpoint, loadDataset } from '@factorgen/io';
import { toFloat } from '@factorgen/formats';
import { createTokenizer, decodeTokens, encodeTokens, presetFashion, tokenizerFromCheckpoint, type Tokenizer, type StoredTokenizerConfig } from '@factorgen/tokenizer';
import { describeWith, systemPython } from '../support/components';

const repoRoot = path.resolve(__dirname, '../..');
let work: string;

type Parity = { positions: number; flips: number; maxFlipMargin: number; recon: number; reconScale: number };

/** factorgen's indices and reconstruction of `n` test images, dumped; then the twin's comparison. */
async function parity(tok: Tokenizer, ckDir: string, name: string, n: number): Promise<Parity> {
  const ds = await loadDataset({ name: 'fashion-mnist', split: 'test' });
  const per = ds.height * ds.width * ds.channels;
  const x = toFloat(ds.images.subarray(0, n * per), [n, ds.height, ds.width, ds.channels]);
  const indices = encodeTokens(tok, x);
  const recon = decodeTokens(tok, indices);
  const dump = path.join(work, `${name}-dump`);
  await saveCheckpoint(dump, { kind: 'twin-parity', config: {}, step: 0, params: new Map<string, tf.Tensor>([['images', x], ['indices', indices], ['recon', recon]]) });
  tf.dispose([x, indices, recon]);
  const r = spawnSync(systemPython, ['-m', 'factorgen_twin.parity', 'tokenizer', '--checkpoint', ckDir, '--dump', dump], {
    cwd: repoRoot, encoding: 'utf8', timeout: 300_000,
    env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'python'), OMP_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' },
  });
  expect(r.stderr + `(exit ${r.status})`).toBe('(exit 0)');
  const p = JSON.parse(r.stdout) as Parity;
  console.log(`twin tokenizer parity ${name}: ${JSON.stringify(p)}`);
  return p;
}

function expectWithin(p: Parity, positions: number): void {
  expect(p.positions).toBe(positions);
  expect(p.flips).toBeLessThanOrEqual(Math.floor(0.01 * positions));
  expect(p.maxFlipMargin).toBeLessThanOrEqual(1e-5);
  expect(p.recon).toBeLessThanOrEqual(1e-4);
}

/** A freshly initialized tokenizer saved as a checkpoint folder (the twin reads it like a trained one). */
async function fresh(name: string, cfg: StoredTokenizerConfig): Promise<{ tok: Tokenizer; dir: string }> {
  const tok = createTokenizer(cfg, `twin-${name}`, { alignHeads: false });
  const dir = path.join(work, name);
  await saveCheckpoint(dir, { kind: 'tokenizer', config: cfg, step: 0, params: tok.params.vars });
  return { tok, dir };
}

describeWith('torch', 'tokenizer twin (PyTorch) vs factorgen', () => {
  beforeAll(async () => {
    await initBackend('cpu');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'factorgen-twin-tok-'));
  });
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('pretrained/tokenizer (FQGAN branches, 2 x 1024 codes): indices of 32 test images and their reconstruction', async () => {
    const dir = path.join(repoRoot, 'pretrained/tokenizer');
    const { tok } = tokenizerFromCheckpoint(await loadCheckpoint(dir, 'tokenizer'), dir);
    expectWithin(await parity(tok, dir, 'pretrained', 32), 32 * 49 * 2);
    tok.params.dispose();
  });

  it("UniTok's attention projection (shared latent, 2 sub-codebooks; causal as configs without attnProjAttention, and bidirectional) and a one-codebook vq, freshly initialized", async () => {
    const base = presetFashion('fq', 2, 64, { baseChannels: 8 });
    // a version-1 config (UniTok as the flag quantProj, causal without attnProjAttention), stored as it was written
    const { version: _v, ...v1 } = base;
    const attn = await fresh('attn', { ...v1, quantizer: { ...base.quantizer, kind: 'fq' }, quantProj: 'attn', perceptualWeight: 0, adversarial: undefined });
    expectWithin(await parity(attn.tok, attn.dir, 'attn', 16), 16 * 49 * 2);
    attn.tok.params.dispose();
    // a version-2 config: the registry's 'unitok' kind
    const bidi = await fresh('attn-bidi', { ...base, quantizer: { ...base.quantizer, kind: 'unitok', attention: 'bidirectional' as const }, perceptualWeight: 0, adversarial: undefined });
    expectWithin(await parity(bidi.tok, bidi.dir, 'attn-bidi', 16), 16 * 49 * 2);
    bidi.tok.params.dispose();
    const vq = await fresh('vq', { ...presetFashion('vq', 1, 64, { baseChannels: 8 }), perceptualWeight: 0, adversarial: undefined });
    expectWithin(await parity(vq.tok, vq.dir, 'vq', 16), 16 * 49);
    vq.tok.params.dispose();
  });
});
