import * as tf from '@tensorflow/tfjs';
import { composite, type TensorBackend } from '../compose';

/**
 * out[s, ...] = sum of x[i, ...] over all i with segmentIds[i] == s; ids outside [0, numSegments) are dropped.
 * x: [...idsShape, ...inner], segmentIds: idsShape (int32) -> [numSegments, ...inner].
 * This is the gradient of gather (embedding / codebook lookups). One ScatterNd pass, O(x.size):
 * a one-hot matMul would cost 2*numSegments*x.size flops, and the cpu backend's version loops over segments.
 */
export function makeUnsortedSegmentSum(backendName: string): tf.KernelConfig {
  return {
    kernelName: 'UnsortedSegmentSum',
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) =>
      composite(backend as TensorBackend, backendName, (s) => {
        const x = inputs.x!;
        const ids = inputs.segmentIds!;
        const numSegments = (attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments;
        const n = ids.shape.reduce((a, b) => a * b, 1);
        const innerShape = x.shape.slice(ids.shape.length);
        const inner = innerShape.reduce((a, b) => a * b, 1);
        const outShape = [numSegments, ...innerShape];
        if (n === 0 || inner === 0 || numSegments === 0) {
          return s.make(outShape, x.dtype, x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner));
        }
        // ScatterNd does no bounds checks, so out-of-range ids go to a spare row that is cut off afterwards.
        const idValues = s.read(ids) as Int32Array | Float32Array;
        let bad = false;
        for (let i = 0; i < n; i++) {
          const v = idValues[i]!;
          if (v < 0 || v >= numSegments || v !== Math.floor(v)) {
            bad = true;
            break;
          }
        }
        let indices: tf.TensorInfo;
        if (!bad && ids.dtype === 'int32') {
          indices = s.reshape(ids, [n, 1]);
        } else {
          const safe = new Int32Array(n);
          for (let i = 0; i < n; i++) {
            const v = idValues[i]!;
            safe[i] = v >= 0 && v < numSegments && v === Math.floor(v) ? v : numSegments;
          }
          indices = s.make([n, 1], 'int32', safe);
        }
        const rows = bad ? numSegments + 1 : numSegments;
        let out = s.run('ScatterNd', { indices, updates: s.reshape(x, [n, inner]) }, { shape: [rows, inner] });
        if (bad) out = s.run('Slice', { x: out }, { begin: [0, 0], size: [numSegments, inner] });
        return s.reshape(out, outShape);
      }),
  };
}
