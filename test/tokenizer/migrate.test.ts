import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { configErrors, configHash, currentConfig, migrateTokenizerConfig, QUANTIZERS, quantizerOfKind } from '@factorgen/tokenizer';
import { currentGeneratorConfig, migrateGeneratorConfig, type StoredGeneratorConfig } from '@factorgen/generator';
import { fingerprint, OLD_SHAPES, BEFORE } from './oldShapes';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

beforeAll(async () => {
  await initBackend('cpu');
});

describe('tokenizer config versions', () => {
  // The configs of the default shipped before issue 23 (trained 2026-11-30, version 1: no version field), kept as
  // fixtures since pretrained/ was replaced; their weights are in git history (pretrained/ at ac4913a).
  const fixture = (kind: 'tokenizer' | 'generator') =>
    JSON.parse(fs.readFileSync(path.join(repoRoot, `test/tokenizer/fixtures/default2/${kind}.config.json`), 'utf8')) as { config: Record<string, unknown>; extra: Record<string, unknown> };

  it('the previous default tokenizer (version 1) migrates without touching the config as stored, which its id and hash cover', () => {
    const stored = fixture('tokenizer').config;
    const asStored = JSON.stringify(stored);
    expect(stored.version).toBeUndefined();
    const cfg = currentConfig(stored);
    expect(JSON.stringify(stored)).toBe(asStored);
    expect(configHash(JSON.parse(asStored))).toBe(configHash(stored));
    expect(configHash(cfg)).not.toBe(configHash(stored));
    expect(configErrors(cfg)).toEqual([]);
    expect(cfg).toMatchObject({ version: 2, factorize: 'branch', branchBlocks: 1 });
    expect(cfg.quantizer).toMatchObject({ kind: 'fq', entropyLogits: 'sq-dist', disentangleOn: 'quantized', lossOverK: 'sum' });
    expect(cfg.quantizer.attention).toBeUndefined();
  });

  it('the previous default generator (version 1, no classRope) migrates to the identity', () => {
    const stored = fixture('generator').config;
    expect(stored.classRope).toBeUndefined();
    const cfg = currentGeneratorConfig(stored as unknown as StoredGeneratorConfig);
    expect([cfg.version, cfg.classRope]).toEqual([2, 'identity']);
    expect(stored.version).toBeUndefined();
  });

  it('a minimal version-1 config gets every absent field written out as its old meaning', () => {
    const v1 = OLD_SHAPES['fq, no entropyLogits/disentangleOn/lossOverK/factorize'];
    expect(migrateTokenizerConfig(v1)).toEqual({
      version: 2, imageSize: 8, channels: 1, baseChannels: 4, channelMult: [1, 2], blocksPerLevel: 1, attention: true, normGroups: 2, latentChannels: 8,
      perceptualWeight: 0, factorize: 'projection', branchBlocks: 1, alignTargets: [],
      quantizer: {
        kind: 'fq', subCodebooks: [{ size: 8, dim: 4 }, { size: 8, dim: 4 }], beta: 0.25, entropyWeight: 0.1, entropyTemperature: 0.01, disentangleWeight: 0.1,
        entropyLogits: 'cosine', disentangleOn: 'pre', lossOverK: 'sum',
      },
    });
    expect(currentConfig(migrateTokenizerConfig(v1))).toEqual(migrateTokenizerConfig(v1));
  });

  it("UniTok's flag becomes the registry's 'unitok' kind: quantProj 'attn' across vq and fq, causal when attnProjAttention is absent", () => {
    const attnFq = currentConfig(OLD_SHAPES["fq with quantProj 'attn', no attnProjAttention, no lossOverK"]);
    expect(attnFq.quantizer).toMatchObject({ kind: 'unitok', attention: 'causal', lossOverK: 'sum' });
    expect('quantProj' in attnFq || 'attnProjAttention' in attnFq).toBe(false);
    const attnVq = currentConfig(OLD_SHAPES["vq with quantProj 'attn', bidirectional, lossOverK 'mean'"]);
    expect(attnVq.quantizer).toMatchObject({ kind: 'unitok', attention: 'bidirectional', lossOverK: 'mean' });
    const linear = currentConfig(OLD_SHAPES["vq with quantProj 'linear'"]);
    expect(linear.quantizer.kind).toBe('vq');
    expect('quantProj' in linear).toBe(false);
    expect(Object.keys(QUANTIZERS)).toEqual(['vq', 'fq', 'unitok']);
    expect(quantizerOfKind('unitok')).toBe(QUANTIZERS.unitok);
    expect(() => quantizerOfKind('rq')).toThrow('quantizer kind "rq" is not one of "vq", "fq", "unitok"');
  });

  it('version-1 fields in a version-2 config, and unknown versions, are refused by name', () => {
    const v2 = currentConfig(OLD_SHAPES['fq, no entropyLogits/disentangleOn/lossOverK/factorize']);
    expect(configErrors({ ...v2, quantProj: 'attn' })).toEqual(['quantProj is a version-1 field (version 2 writes "attn" as quantizer.kind "unitok")']);
    expect(configErrors({ ...v2, version: 3 })).toEqual(['version must be 1 (or absent) or 2; this factorgen reads no other (got 3)']);
    expect(configErrors({ ...v2, quantizer: { ...v2.quantizer, attention: 'causal' } })).toEqual(['quantizer.attention is only for kind "unitok" (got "causal" with kind "fq")']);
    const { lossOverK: _l, ...noLoss } = v2.quantizer;
    expect(configErrors({ ...v2, quantizer: noLoss })).toEqual(['quantizer.lossOverK must be "sum" or "mean" (got undefined)']);
    expect(() => currentGeneratorConfig({ ...(migrateGeneratorConfig({}) as object), version: 7 } as never)).toThrow('version must be 1 (or absent) or 2; this factorgen reads no other (got 7)');
  });

  it.each(Object.keys(OLD_SHAPES))('a config of an older shape gives the outputs it gave before the migration (%s)', (name) => {
    expect(fingerprint(OLD_SHAPES[name])).toEqual(BEFORE[name]);
    // and its migrated form gives the same
    expect(fingerprint(migrateTokenizerConfig(OLD_SHAPES[name]))).toEqual(BEFORE[name]);
  });
});
