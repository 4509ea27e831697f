import * as tf from '@tensorflow/tfjs';
import { toFloat, toUint8 } from '@factorgen/formats';
import { type TokenizerConfig, gridSize } from './config/schema';
import { encodeTokens, decodeTokens, type Tokenizer } from './model';

/**
 * One turn of the event loop. On wasm and cpu a batch's read resolves as a microtask, so a loop of batches never
 * yields: a signal handler (Ctrl-C) or a page's UI would wait for the whole loop. Awaited between batches.
 */
const nextTurn = () => new Promise<void>((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

/**
 * Tokenizes images in batches. pixels: uint8 [N,H,W,C] -> int32 [N, h*w, K] (position-major, as in token files).
 * One read back per batch. `onProgress` is called after each batch with the images done so far.
 */
export async function encodeImages(
  tok: Tokenizer, pixels: Uint8Array, n: number, batch: number, onProgress?: (done: number) => void,
): Promise<Int32Array> {
  const cfg: TokenizerConfig = tok.cfg;
  const [H, C] = [cfg.imageSize, cfg.channels];
  const gh = gridSize(cfg);
  const gw = gh;
  const K = cfg.quantizer.subCodebooks.length;
  const out = new Int32Array(n * gh * gw * K);
  const per = H * H * C;
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const ids = tf.tidy(() => encodeTokens(tok, toFloat(pixels.subarray(i * per, (i + b) * per), [b, H, H, C])));
    out.set((await ids.data()) as Int32Array, i * gh * gw * K);
    ids.dispose();
    onProgress?.(i + b);
    await nextTurn();
  }
  return out;
}

/** Decodes token maps in batches (one read back per batch). tokens: int32 [N, h*w, K] -> uint8 images [N,H,W,C]. */
export async function decodeToImages(tok: Tokenizer, tokens: Int32Array, n: number, batch: number): Promise<Uint8Array> {
  const cfg: TokenizerConfig = tok.cfg;
  const [H, C] = [cfg.imageSize, cfg.channels];
  const gh = gridSize(cfg);
  const gw = gh;
  const K = cfg.quantizer.subCodebooks.length;
  const per = gh * gw * K;
  const out = new Uint8Array(n * H * H * C);
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const img = tf.tidy(() => decodeTokens(tok, tf.tensor4d(tokens.subarray(i * per, (i + b) * per), [b, gh, gw, K], 'int32')));
    out.set(await toUint8(img as tf.Tensor4D), i * H * H * C);
    img.dispose();
    await nextTurn();
  }
  return out;
}

/** Encode then decode: the reconstruction through the quantizer. pixels uint8 [N,H,W,C] -> uint8 [N,H,W,C]. */
export async function reconstructImages(tok: Tokenizer, pixels: Uint8Array, n: number, batch: number): Promise<Uint8Array> {
  return decodeToImages(tok, await encodeImages(tok, pixels, n, batch), n, batch);
}
