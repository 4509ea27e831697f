import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '@factorgen/io';
import { Sha256 } from '@factorgen/formats';
import { exportRecordOf, tokenizerIdOf } from '@factorgen/tokenizer';

describe('Sha256 (browser-safe, @noble/hashes)', () => {
  it('matches the FIPS 180-4 test vector for "abc"', () => {
    expect(new Sha256().update('abc').hex()).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('gives node:crypto digests for mixed string and byte updates', () => {
    const bytes = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31 + 7) & 255);
    const ours = new Sha256().update('héllo').update(bytes).update('').hex();
    const node = createHash('sha256').update('héllo').update(bytes).update('').digest('hex');
    expect(ours).toBe(node);
  });

  it('keeps the shipped tokenizer id the generator was trained with; the export digest is the hash node:crypto gives', async () => {
    // pretrained/tokenizer is an export (inference tensors only): its id is the one recorded from the full checkpoint
    // it was exported from, valid while its config and tensors have the recorded digest (the id formula over them)
    const ck = await loadCheckpoint('pretrained/tokenizer', 'tokenizer');
    const gen = await loadCheckpoint('pretrained/generator', 'generator');
    const h = createHash('sha256').update(JSON.stringify(ck.config));
    for (const name of [...ck.tensors.keys()].sort()) {
      const t = ck.tensors.get(name)!;
      h.update(name).update(JSON.stringify(t.shape)).update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    expect(exportRecordOf(ck)?.weightsDigest).toBe(h.digest('hex').slice(0, 16));
    expect(tokenizerIdOf(ck)).toBe('60b27be1918cea81');
    expect(tokenizerIdOf(ck)).toBe((gen.extra as { tokenizerId: string }).tokenizerId);
  });
});
