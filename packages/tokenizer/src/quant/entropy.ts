import * as tf from '@tensorflow/tfjs';
import { codeEntropyBackward, codeEntropyForward, codeEntropyKernel } from '@factorgen/tfjs-ext';

/**
 * Whether fusedCodeEntropyLoss runs here: WebAssembly SIMD128 is available and the backend keeps tensors in CPU
 * memory (wasm, cpu), so reading z and the codes and writing the gradients costs copies of N x d and V x d floats
 * only. Elsewhere (webgpu, tensorflow) codeEntropyLoss takes the chunked tfjs route.
 */
export function fusedCodeEntropyAvailable(): boolean {
  const backend = tf.getBackend();
  return (backend === 'wasm' || backend === 'cpu') && codeEntropyKernel() !== null;
}

/**
 * entropyLoss(z codes^T, temperature) (mean per-row entropy of softmax(similarity / T) minus the entropy of the mean
 * assignment) as one op on the SIMD128 kernel of packages/tfjs-ext/src/kernels/codeEntropy.wat, with its gradient: the
 * forward pass keeps per-row statistics (3 N floats) and the average assignment (V floats); the backward pass
 * recomputes the softmax row by row. No N x V tensor exists at any time, on the tape or off it, and the kernel
 * makes one exp per similarity in each pass (the tfjs route: two, plus ~15 elementwise passes over N x V tensors).
 * Deterministic: rows are summed in order, on one thread whatever --threads is.
 * z: [N, d], codes: [V, d] float32 (L2-normalized for cosine logits), temperature > 0 -> scalar (nats).
 * Throws where fusedCodeEntropyAvailable() is false.
 */
export function fusedCodeEntropyLoss(z: tf.Tensor2D, codes: tf.Tensor2D, temperature: number): tf.Scalar {
  const [N, d] = z.shape;
  const V = codes.shape[0];
  if (codes.shape[1] !== d || z.dtype !== 'float32' || codes.dtype !== 'float32') {
    throw new Error(`fusedCodeEntropyLoss: z ${z.dtype} [${z.shape}] and codes ${codes.dtype} [${codes.shape}] do not fit`);
  }
  const op = tf.customGrad((zIn, cIn) => {
    // Copies on wasm (readSync slices the heap); the cpu backend's own immutable arrays otherwise.
    const zv = (zIn as tf.Tensor).dataSync() as Float32Array;
    const cv = (cIn as tf.Tensor).dataSync() as Float32Array;
    const { value, saved } = codeEntropyForward(zv, cv, N, V, d, temperature);
    return {
      value: tf.scalar(value),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
        const up = (dy as tf.Tensor).dataSync()[0]!;
        const { dz, dcodes } = codeEntropyBackward(zv, cv, N, V, d, temperature, saved, up);
        return [tf.tensor2d(dz, [N, d]), tf.tensor2d(dcodes, [V, d])];
      },
    };
  });
  return op(z, codes) as tf.Scalar;
}
