import * as tf from '@tensorflow/tfjs';
import type { Rng } from '@factorgen/nn';
import { subPrefix } from './codebook';
import type { Tokenizer } from '../model';
import type { CodeHistogram } from './usage';

/**
 * Random restart of dead codes (Jukebox / "codebook reset"): every code of sub-codebook k that the histogram
 * never saw is overwritten with a randomly chosen current encoder output of that sub-codebook, so it starts
 * where the encoder actually puts mass. subCodes: K maps [B,h,w,d_k] (the forward pass's normalized
 * pre-quantization codes; not disposed). Returns how many codes were restarted. Optimizer moments of those
 * rows are left as they are (they decay within a few steps). Reads the codebook and sub-code maps back (only the
 * sub-codebooks that have dead codes): call it every few hundred steps, not every step. `onRestart` (when given) is
 * told each overwritten codebook's parameter name and rows, after the rows are written (the trainer's EMA copies them).
 */
export async function restartDeadCodes(
  tok: Tokenizer,
  hist: CodeHistogram,
  subCodes: tf.Tensor[],
  rng: Rng,
  onRestart?: (param: string, rows: number[]) => void,
): Promise<number> {
  const K = tok.cfg.quantizer.subCodebooks.length;
  if (subCodes.length !== K) throw new Error(`restartDeadCodes: ${subCodes.length} sub-code maps for K = ${K}`);
  let restarted = 0;
  for (let k = 0; k < K; k++) {
    const dead = hist.unused(k);
    if (dead.length === 0) continue;
    const cb = tok.params.get(`${subPrefix(k)}/codebook`);
    const [V, d] = cb.shape;
    const [cbData, srcData] = await Promise.all([cb.data(), subCodes[k].data()]);
    const rows = (cbData as Float32Array).slice();
    const src = srcData as Float32Array;
    const n = src.length / d;
    for (const code of dead) {
      if (code >= V) continue;
      const j = rng.int(n);
      rows.set(src.subarray(j * d, (j + 1) * d), code * d);
    }
    tf.tidy(() => cb.assign(tf.tensor2d(rows, [V, d])));
    onRestart?.(`${subPrefix(k)}/codebook`, dead.filter((code) => code < V));
    restarted += dead.length;
  }
  return restarted;
}
