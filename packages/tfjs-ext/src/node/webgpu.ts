import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

/**
 * WebGPU in Node through Dawn's bindings (the `webgpu` npm package): finding an adapter and handing it to
 * @tensorflow/tfjs-backend-webgpu. Dawn drives Vulkan on Linux GPUs (Metal on macOS, D3D12 on Windows); on machines
 * without a GPU a software adapter stands in: Mesa's lavapipe (Vulkan) or llvmpipe through Dawn's OpenGL backend
 * in compatibility mode. Only the typed surface we use is declared here (no DOM/WebGPU lib in our tsconfig).
 */

/** The parts of a WebGPU adapter we read (https://www.w3.org/TR/webgpu/#gpuadapter). */
type GpuAdapter = {
  readonly info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  readonly limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
};
type Gpu = { requestAdapter(options?: { powerPreference?: string; featureLevel?: string }): Promise<GpuAdapter | null> };
type DawnModule = { create(flags: string[]): Gpu; globals: Record<string, unknown> };

/** How Dawn reached the adapter: its default backend (Vulkan on Linux) or OpenGL (EGL, compatibility mode). */
export type WebGpuRoute = 'default' | 'opengl';

/** What `factorgen info` and the run-start line show about a WebGPU adapter. Limits in bytes. */
export type WebGpuAdapterInfo = {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation (the adapter's fallback flag, or llvmpipe/lavapipe/SwiftShader/softpipe). */
  software: boolean;
  route: WebGpuRoute;
  featureLevel: 'core' | 'compatibility';
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
};

/** The install hint every "no adapter" message ends with (the CI route; README "GPU (WebGPU)"). */
export const WEBGPU_INSTALL_HINT =
  "a GPU's Vulkan driver, or for a software adapter `apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri` (Mesa llvmpipe " +
  'through OpenGL, what .ci/run installs; or Mesa >= 24 lavapipe: mesa-vulkan-drivers libvulkan1 from bookworm-backports)';

const SOFTWARE_DEVICE = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

/** True when `info` describes a CPU implementation of WebGPU. */
export function isSoftwareAdapter(info: GpuAdapter['info']): boolean {
  return info.isFallbackAdapter === true || [info.device, info.description, info.architecture, info.vendor].some((s) => SOFTWARE_DEVICE.test(s ?? ''));
}

/**
 * Whether the Vulkan loader could load at all (Linux only; elsewhere true). Dawn prints a native warning to stderr when
 * libvulkan.so.1 is missing, so we look before we ask it: `auto` must probe without a word.
 */
function vulkanLoaderPresent(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib',
  ];
  return dirs.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')));
}

const SOFTWARE_ICD = /lvp|lavapipe|swiftshader|swrast/i;

/**
 * Vulkan driver manifests (ICD JSON files) the loader would read: VK_DRIVER_FILES / VK_ICD_FILENAMES, else the
 * icd.d folders under XDG_DATA_DIRS, /usr/local/share, /usr/share and /etc (https://github.com/KhronosGroup/Vulkan-Loader,
 * docs/LoaderDriverInterface.md). Linux only.
 */
function vulkanIcdFiles(): string[] {
  const explicit = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (explicit) return explicit.split(':').filter(Boolean);
  const roots = [...(process.env.XDG_DATA_DIRS ?? '').split(':').filter(Boolean), '/usr/local/share', '/usr/share', '/etc'];
  const out: string[] = [];
  for (const r of new Set(roots)) {
    const dir = path.join(r, 'vulkan', 'icd.d');
    try {
      for (const f of fs.readdirSync(dir)) if (f.endsWith('.json')) out.push(path.join(dir, f));
    } catch {
      // no such folder
    }
  }
  return out;
}

/**
 * Whether a hardware Vulkan driver may be installed: some ICD manifest that is not a CPU one (lavapipe, SwiftShader).
 * `auto` asks Dawn only then: creating a lavapipe adapter costs ~40 ms and Dawn prints limit warnings on stderr.
 */
function hardwareVulkanDriverPresent(): boolean {
  if (process.platform !== 'linux') return true;
  return vulkanIcdFiles().some((f) => {
    if (SOFTWARE_ICD.test(path.basename(f))) return false;
    try {
      return !SOFTWARE_ICD.test(fs.readFileSync(f, 'utf8'));
    } catch {
      return false;
    }
  });
}

let dawn: DawnModule | null | undefined;
function loadDawn(): DawnModule | null {
  if (dawn === undefined) {
    try {
      dawn = createRequire(import.meta.url)('webgpu') as DawnModule;
    } catch {
      dawn = null; // not installed, or no prebuilt dawn.node for this platform / glibc
    }
  }
  return dawn;
}

export type WebGpuProbe = { gpu: Gpu; adapter: GpuAdapter; info: WebGpuAdapterInfo; globals: Record<string, unknown> };

/**
 * Looks for a WebGPU adapter. `routes` are tried in order: 'default' (skipped on Linux without the Vulkan loader)
 * asks for a high-performance core adapter, 'opengl' for a compatibility-mode one through EGL (surfaceless, so no
 * display is needed). With `allowSoftware` false a software adapter counts as none. Never throws: null when Dawn does
 * not load or nothing fits, with the reason in `why`.
 */
export async function probeWebGpu(opts: { routes: WebGpuRoute[]; allowSoftware: boolean }): Promise<{ probe: WebGpuProbe | null; why: string }> {
  // Without a hardware driver, `auto` has nothing to find: say so before loading Dawn at all.
  if (!opts.allowSoftware && process.platform === 'linux' && !(vulkanLoaderPresent() && hardwareVulkanDriverPresent())) {
    return { probe: null, why: 'no hardware Vulkan driver' };
  }
  const mod = loadDawn();
  if (!mod) return { probe: null, why: 'the `webgpu` package (Dawn) did not load on this platform' };
  const seen: string[] = [];
  for (const route of opts.routes) {
    if (route === 'default' && !vulkanLoaderPresent()) {
      seen.push('no Vulkan loader (libvulkan.so.1)');
      continue;
    }
    if (route === 'opengl') process.env.EGL_PLATFORM ??= 'surfaceless';
    const featureLevel = route === 'opengl' ? 'compatibility' : 'core';
    let adapter: GpuAdapter | null = null;
    let gpu: Gpu | null = null;
    try {
      gpu = mod.create(route === 'opengl' ? ['backend=opengl'] : []);
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', featureLevel });
    } catch (e) {
      seen.push(`${route}: ${(e as Error).message}`);
      continue;
    }
    if (!adapter || !gpu) {
      seen.push(route === 'opengl' ? 'no OpenGL (EGL) adapter' : 'no Vulkan adapter');
      continue;
    }
    const i = adapter.info;
    const info: WebGpuAdapterInfo = {
      vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
      software: isSoftwareAdapter(i), route, featureLevel,
      maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    };
    if (info.software && !opts.allowSoftware) {
      seen.push(`only a software adapter (${describeAdapter(info)})`);
      continue;
    }
    return { probe: { gpu, adapter, info, globals: mod.globals }, why: '' };
  }
  return { probe: null, why: seen.join('; ') || 'no route tried' };
}

/**
 * Makes `probe`'s adapter the one tfjs-backend-webgpu gets: WebGPU's globals (GPUBufferUsage, ...) on globalThis and a
 * navigator.gpu whose requestAdapter returns it. Must run before that module is imported (it checks navigator.gpu
 * when loaded). Node 21+ has a getter-only `navigator`, hence defineProperty.
 */
export function installWebGpuGlobals(probe: WebGpuProbe): void {
  Object.assign(globalThis, probe.globals);
  const gpu = { ...probe.gpu, requestAdapter: async () => probe.adapter, getPreferredCanvasFormat: () => 'rgba8unorm' };
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;

/** "mesa software llvmpipe (LLVM 15.0.6, 256 bits), software, vulkan core, max buffer 4096 MiB, max storage binding 128 MiB" */
export function describeAdapter(a: WebGpuAdapterInfo): string {
  const name = [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || a.description || 'unknown adapter';
  const how = `${a.route === 'opengl' ? 'opengl' : process.platform === 'linux' ? 'vulkan' : 'native'} ${a.featureLevel}`;
  return `${name}${a.description && !name.includes(a.description) ? ` [${a.description}]` : ''}, ${a.software ? 'software' : 'hardware'}, ${how}, ` +
    `max buffer ${mib(a.maxBufferSize)}, max storage binding ${mib(a.maxStorageBufferBindingSize)}`;
}
