/**
 * Memory ceiling of a training step on wasm (the backend whose heap is a hard 4 GB wasm32 limit and never shrinks):
 * the issue-sized generator (width 256, depth 6, 8 heads, 2-layer AR head, 2 x 256 codes on a 7x7 grid) at batch 64
 * trains a step with the heap under 1 GB, with the gradient checkpointing the trainer picks for it by default
 * ('keepProducts': the projections' outputs kept, the rest of each block recomputed; measured 823 MiB). Before the tape
 * changes (shared saved tensors, gradients released during the backward pass, recomputed blocks) this step aborted at
 * the 4 GB limit; without recomputation ('none') the process peaked at 1973 MiB RSS.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultAdamW, disposeAdamState, initAdamState, optimizerStep, Rng } from '@factorgen/nn';
import { initBackend } from '@factorgen/tfjs-ext/node';
import { createGenerator, generatorLoss, KEEP_PRODUCTS_MAX_BYTES, keptProductBytes, recomputeByDefault, makeGeneratorConfig } from '@factorgen/generator';

beforeAll(async () => {
  await initBackend('wasm');
});

/** Bytes of the wasm heap (its high-water mark: it grows and never shrinks). */
function heapBytes(): number {
  return (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
}

describe('training memory on wasm', () => {
  it('a width-256 x 6 generator step at batch 64 completes with the heap under 1 GB', async () => {
    const cfg = makeGeneratorConfig({
      gridH: 7, gridW: 7, subCodebookSizes: [256, 256], numClasses: 10, width: 256, depth: 6, heads: 8, mlpHidden: 704,
      headMode: 'ar', headLayers: 2, headWidth: 256, headHeads: 8, headMlpHidden: 704, dropout: 0.1, classDropout: 0.1, rope: '2d',
    });
    const gen = createGenerator(cfg, 0);
    const B = 64;
    expect(recomputeByDefault(cfg, B)).toBe('keepProducts');
    const rng = new Rng('memory');
    const tokens = tf.tensor3d(Int32Array.from({ length: B * 49 * 2 }, () => rng.int(256)), [B, 49, 2], 'int32');
    const labels = Int32Array.from({ length: B }, (_, i) => i % 10);
    const opt = initAdamState();
    const { loss, gradNorm } = optimizerStep(() => generatorLoss(gen, tokens, labels, { training: true, rng }).loss, gen.params.vars, opt, defaultAdamW, 1e-3, 1);
    const value = (await loss.data())[0]!;
    expect(Math.abs(value - Math.log(256))).toBeLessThan(0.1); // untrained: uniform predictions
    expect(heapBytes()).toBeLessThan(1 << 30);
    tf.dispose([tokens, loss, gradNorm]);
    disposeAdamState(opt);
    gen.params.dispose();
  });
});

describe('default gradient checkpointing', () => {
  const cfg = makeGeneratorConfig({
    gridH: 7, gridW: 7, subCodebookSizes: [256, 256], numClasses: 10, width: 256, depth: 6, heads: 8, mlpHidden: 704,
    headMode: 'ar', headLayers: 2, headWidth: 256, headHeads: 8, headMlpHidden: 704, dropout: 0.1, classDropout: 0.1, rope: '2d',
  });
  it('counts the kept projection outputs (width 256 x 6, batch 64: 6 blocks x 3136 positions + 2 head blocks x 6272 slots)', () => {
    expect(keptProductBytes(cfg, 64)).toBe(4 * (5 * 256 + 2 * 704) * (6 * 3136 + 2 * 6272));
  });
  it("recomputes whole blocks ('all') once the kept outputs would pass the bound", () => {
    const largest = Math.floor(KEEP_PRODUCTS_MAX_BYTES / keptProductBytes(cfg, 1));
    expect(recomputeByDefault(cfg, largest)).toBe('keepProducts');
    expect(recomputeByDefault(cfg, largest + 1)).toBe('all');
    expect(recomputeByDefault({ ...cfg, width: 1024, heads: 16, mlpHidden: 2816, headWidth: 1024, headMlpHidden: 2816 }, 64)).toBe('all');
  });
});
