import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { builtinKernel, registerTrainingKernels } from '@factorgen/tfjs-ext';
import { useTrainingKernels } from './kernels/harness';

useTrainingKernels();

describe('registration', () => {
  it('is idempotent and keeps the built-ins reachable', async () => {
    expect(registerTrainingKernels('wasm')).toEqual({ added: [], replaced: [] });
    expect(registerTrainingKernels('cpu')).toEqual({ added: [], replaced: [] });
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    // wasm had none: no built-in behind ours. cpu had one: still reachable as the reference.
    expect(builtinKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    expect(builtinKernel('Conv2DBackpropFilter', 'cpu')).not.toBe(tf.getKernel('Conv2DBackpropFilter', 'cpu'));
    expect(builtinKernel('Conv2DBackpropFilter', 'cpu')?.kernelName).toBe('Conv2DBackpropFilter');
  });
});
