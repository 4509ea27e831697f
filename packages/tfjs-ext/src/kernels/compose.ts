import * as tf from '@tensorflow/tfjs';

/** The backend as kernels see it. */
export type TensorBackend = tf.KernelBackend;

/** A new backend tensor holding `values` (write() is the one constructor the cpu and wasm backends share). */
export function makeTensor(backend: TensorBackend, shape: number[], dtype: tf.DataType, values: tf.BackendValues): tf.TensorInfo {
  return { dataId: backend.write(values, shape, dtype), shape, dtype };
}

/**
 * A replacement for a backend's built-in kernel: the built-in's name, backend and setup/dispose (its module state)
 * with another kernelFunc, which hands the cases it does not cover back to the built-in.
 */
export function replaceBuiltin(builtin: tf.KernelConfig, kernelFunc: tf.KernelFunc): tf.KernelConfig {
  return { kernelName: builtin.kernelName, backendName: builtin.backendName, setupFunc: builtin.setupFunc, disposeFunc: builtin.disposeFunc, kernelFunc };
}

/** Inputs as kernels take them: named tensors, or a list (Concat, AddN). */
export type KernelInputs = tf.NamedTensorInfoMap | tf.TensorInfo[];

/**
 * Calls other kernels of the same backend from inside a kernel, the way the backends compose their own
 * kernels: no engine, no tape, TensorInfos only. Every intermediate is tracked and freed when the scope ends.
 */
export class KernelScope {
  private readonly owned: tf.TensorInfo[] = [];

  constructor(
    readonly backend: TensorBackend,
    readonly backendName: string,
  ) {}

  /** Runs `kernelName` as registered for this backend (our replacements included). */
  run(kernelName: string, inputs: KernelInputs, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
    const config = tf.getKernel(kernelName, this.backendName);
    if (!config) throw new Error(`kernel ${kernelName} is not registered for backend ${this.backendName}`);
    return this.call(config.kernelFunc, inputs, attrs);
  }

  /** Runs a given kernel function (e.g. the built-in one a replacement wraps). */
  call(kernelFunc: tf.KernelFunc, inputs: KernelInputs, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
    // Kernel functions accept lists for list-input kernels although the declared type is a map.
    const out = kernelFunc({ inputs: inputs as tf.NamedTensorInfoMap, backend: this.backend, attrs });
    const info = Array.isArray(out) ? out[0] : out;
    if (!info) throw new Error('kernel returned no output');
    this.owned.push(info);
    return info;
  }

  /** A new tensor from JS values, freed with the scope unless returned. */
  make(shape: number[], dtype: tf.DataType, values: tf.BackendValues): tf.TensorInfo {
    const info = makeTensor(this.backend, shape, dtype, values);
    this.owned.push(info);
    return info;
  }

  reshape(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose(x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  /** Synchronous read of a (small) tensor's values, e.g. indices. */
  read(x: tf.TensorInfo): tf.BackendValues {
    return this.backend.readSync(x.dataId);
  }

  /** Frees every intermediate except `keep`; a reshape of an intermediate stays valid (data ids are ref-counted). */
  dispose(keep?: tf.TensorInfo): void {
    for (const t of this.owned) if (t !== keep) this.backend.disposeData(t.dataId);
    this.owned.length = 0;
  }
}

/** Runs `body` in a KernelScope and frees all its intermediates, also when it throws; returns body's output. */
export function composite(
  backend: TensorBackend,
  backendName: string,
  body: (s: KernelScope) => tf.TensorInfo,
): tf.TensorInfo {
  const scope = new KernelScope(backend, backendName);
  let out: tf.TensorInfo | undefined;
  try {
    out = body(scope);
    return out;
  } finally {
    scope.dispose(out);
  }
}
