import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs's WebGPUBackend used here (its device's limits and buffer release). */
type WebGpuBackend = tf.KernelBackend & { device: { limits: { maxStorageBuffersPerShaderStage: number } } };

/**
 * AddN for webgpu that sums in chunks. tfjs's kernel binds every input as a storage buffer in one shader; past the
 * device's maxStorageBuffersPerShaderStage (8 by default, and on the software adapters we test with) the pipeline fails
 * validation and the result is silently zero, e.g. the global gradient norm over ~100 parameters. Like tfjs's own Concat,
 * this adds groups of at most (limit - 1) inputs (one binding is the output), then adds the partial sums.
 * inputs: N tensors of one shape -> their elementwise sum.
 */
export function makeWebGpuAddN(builtin: tf.KernelConfig): tf.KernelConfig {
  const addN = (inputs: tf.TensorInfo[], backend: WebGpuBackend): tf.TensorInfo => {
    const max = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
    // AddN's inputs are an array at run time (tf.addN passes one), typed as a named map.
    if (inputs.length <= max) return builtin.kernelFunc({ inputs: inputs as unknown as tf.NamedTensorInfoMap, backend, attrs: {} }) as tf.TensorInfo;
    const partial: tf.TensorInfo[] = [];
    for (let i = 0; i < inputs.length; i += max) partial.push(addN(inputs.slice(i, i + max), backend));
    const out = addN(partial, backend);
    for (const p of partial) backend.disposeData(p.dataId);
    return out;
  };
  return {
    kernelName: 'AddN',
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend }) => addN(Array.from(inputs as unknown as ArrayLike<tf.TensorInfo>), backend as WebGpuBackend),
  };
}
