import { codeEntropyWasm } from './codeEntropyWasm';

/**
 * The codebook-usage entropy loss (mean_n H(softmax(z_n C^T / T)) - H(mean_n softmax(z_n C^T / T))) and its gradient
 * on WebAssembly SIMD128 (codeEntropy.wat): one pass per row over a row buffer of V floats instead of tfjs's ~15
 * elementwise passes over [N, V] tensors, and nothing of size N x V exists at any time (the module's memory holds
 * z, the codes and a few V-float rows). Values on float32 arrays in the caller's memory; the tokenizer's
 * codeEntropyLoss wraps them as a tfjs op with a custom gradient.
 */
type Exports = {
  memory: { buffer: ArrayBuffer; grow: (pages: number) => number };
  forward: (z: number, cT: number, N: number, d: number, Vp: number, V: number, invT: number, a: number, e: number, colSum: number, rowMax: number, rowLogSum: number, H: number) => void;
  backward: (z: number, cT: number, N: number, d: number, Vp: number, V: number, invT: number, rowMax: number, rowLogSum: number, H: number, g: number, scale: number, p: number, lp: number, dz: number, dcT: number) => void;
};

/** The two WebAssembly constructors used here (the project's TypeScript libs declare no WebAssembly global). */
type WasmApi = { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: object) => { exports: unknown } };

let instance: Exports | null | undefined;

/** The instantiated kernel, or null where WebAssembly SIMD128 is unavailable (then callers use the tfjs route). */
export function codeEntropyKernel(): Exports | null {
  if (instance === undefined) {
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    try {
      if (!wasm) throw new Error('no WebAssembly');
      // under 4 KB: synchronous compilation is allowed everywhere (browsers cap it at 4 KB on the main thread).
      const bin = atob(codeEntropyWasm);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      instance = new wasm.Instance(new wasm.Module(bytes), { math: { log: Math.log } }).exports as Exports;
    } catch {
      instance = null;
    }
  }
  return instance;
}

/** Added to the average assignment inside its log (as entropyLoss does). */
export const codeEntropyEps = 1e-5;

/** What the backward pass needs from the forward pass: per row max logit, log of the softmax sum and entropy; the average assignment. */
export type CodeEntropySaved = { rowMax: Float32Array; rowLogSum: Float32Array; H: Float32Array; avg: Float32Array };

/** Float offsets of the module's buffers for one problem (each segment starts on a 16-byte boundary). */
function layout(N: number, V: number, d: number) {
  const Vp = Math.ceil(V / 8) * 8;
  const up = (n: number) => Math.ceil(n / 4) * 4;
  let at = 0;
  const take = (n: number) => {
    const o = at;
    at += up(n);
    return o;
  };
  const o = {
    z: take(N * d), cT: take(d * Vp), rowA: take(Vp), rowB: take(Vp), colSum: take(Vp), g: take(Vp),
    rowMax: take(N), rowLogSum: take(N), H: take(N), dz: take(N * d), dcT: take(d * Vp),
  };
  return { Vp, o, floats: at };
}

/** The module's memory as floats, grown to at least `floats` (views go stale on growth). */
function memory(k: Exports, floats: number): Float32Array {
  const have = k.memory.buffer.byteLength;
  if (4 * floats > have) k.memory.grow(Math.ceil((4 * floats - have) / 65536));
  return new Float32Array(k.memory.buffer);
}

/** Writes z [N,d] and codes [V,d] (as cT [d,Vp], zero padding columns) into the module's memory. */
function load(mem: Float32Array, o: ReturnType<typeof layout>['o'], z: Float32Array, codes: Float32Array, V: number, Vp: number, d: number): void {
  mem.set(z, o.z);
  mem.fill(0, o.cT, o.cT + d * Vp);
  for (let j = 0; j < V; j++) for (let k = 0; k < d; k++) mem[o.cT + k * Vp + j] = codes[j * d + k]!;
}

function checkShapes(name: string, z: Float32Array, codes: Float32Array, N: number, V: number, d: number): void {
  if (z.length !== N * d || codes.length !== V * d || N < 1 || V < 1 || d < 1) {
    throw new Error(`${name}: z of ${z.length} and codes of ${codes.length} values do not match N ${N}, V ${V}, d ${d}`);
  }
}

/**
 * Forward pass. z: [N, d], codes: [V, d] (row-major float32), temperature > 0 -> the loss (nats; float64 sums of
 * the kernel's float32 row entropies and column sums) and what the backward pass needs. Throws without SIMD128.
 */
export function codeEntropyForward(z: Float32Array, codes: Float32Array, N: number, V: number, d: number, temperature: number): { value: number; saved: CodeEntropySaved } {
  const k = codeEntropyKernel();
  if (!k) throw new Error('codeEntropyForward: WebAssembly SIMD128 is not available');
  checkShapes('codeEntropyForward', z, codes, N, V, d);
  const { Vp, o, floats } = layout(N, V, d);
  const mem = memory(k, floats);
  load(mem, o, z, codes, V, Vp, d);
  mem.fill(0, o.colSum, o.colSum + Vp);
  k.forward(4 * o.z, 4 * o.cT, N, d, Vp, V, Math.fround(1 / temperature), 4 * o.rowA, 4 * o.rowB, 4 * o.colSum, 4 * o.rowMax, 4 * o.rowLogSum, 4 * o.H);
  const H = mem.slice(o.H, o.H + N);
  const avg = new Float32Array(V);
  for (let j = 0; j < V; j++) avg[j] = mem[o.colSum + j]! / N;
  let sampleH = 0;
  for (let n = 0; n < N; n++) sampleH += H[n]!;
  let avgH = 0;
  for (let j = 0; j < V; j++) avgH -= avg[j]! * Math.log(avg[j]! + codeEntropyEps);
  return {
    value: sampleH / N - avgH,
    saved: { rowMax: mem.slice(o.rowMax, o.rowMax + N), rowLogSum: mem.slice(o.rowLogSum, o.rowLogSum + N), H, avg },
  };
}

/**
 * Backward pass: dL/dz [N, d] and dL/dcodes [V, d] for an upstream gradient dy of the loss (a number), from the
 * forward pass's saved statistics. With a = z codes^T / T, p_n = softmax(a_n), g = dH(avg)/d avg =
 * -(log(avg + eps) + avg / (avg + eps)): dL/da_nj = -(dy/N) p_nj (log p_nj + H_n + g_j - sum_v g_v p_nv).
 */
export function codeEntropyBackward(z: Float32Array, codes: Float32Array, N: number, V: number, d: number, temperature: number, saved: CodeEntropySaved, dy: number): { dz: Float32Array; dcodes: Float32Array } {
  const k = codeEntropyKernel();
  if (!k) throw new Error('codeEntropyBackward: WebAssembly SIMD128 is not available');
  checkShapes('codeEntropyBackward', z, codes, N, V, d);
  const { Vp, o, floats } = layout(N, V, d);
  const mem = memory(k, floats);
  load(mem, o, z, codes, V, Vp, d);
  mem.set(saved.rowMax, o.rowMax);
  mem.set(saved.rowLogSum, o.rowLogSum);
  mem.set(saved.H, o.H);
  mem.fill(0, o.g, o.g + Vp);
  for (let j = 0; j < V; j++) {
    const a = saved.avg[j]!;
    mem[o.g + j] = -(Math.log(a + codeEntropyEps) + a / (a + codeEntropyEps));
  }
  mem.fill(0, o.dcT, o.dcT + d * Vp);
  // (dy * (-1/N)) / T in float32, as the tfjs route computes it
  const scale = Math.fround(Math.fround(dy * Math.fround(-1 / N)) / temperature);
  k.backward(4 * o.z, 4 * o.cT, N, d, Vp, V, Math.fround(1 / temperature), 4 * o.rowMax, 4 * o.rowLogSum, 4 * o.H, 4 * o.g, scale, 4 * o.rowA, 4 * o.rowB, 4 * o.dz, 4 * o.dcT);
  const dz = mem.slice(o.dz, o.dz + N * d);
  const dcodes = new Float32Array(V * d);
  for (let j = 0; j < V; j++) for (let c = 0; c < d; c++) dcodes[j * d + c] = mem[o.dcT + c * Vp + j]!;
  return { dz, dcodes };
}
