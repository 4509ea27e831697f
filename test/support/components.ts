/**
 * Suites that need a system component (Chromium, Mesa EGL, Debian's python3-torch) run when it is installed and
 * otherwise skip with one loud line naming what to install. A minimal version: the lead replaces it with the full one.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe } from 'vitest';

export type Component = 'chromium' | 'egl' | 'torch';

/** The interpreter the twin runs on: Debian's, which has python3-torch (the python3 first on PATH may not). */
export const systemPython = '/usr/bin/python3';

const onPath = (names: string[]) => names.some((n) => spawnSync('sh', ['-c', `command -v ${n}`], { encoding: 'utf8' }).status === 0);

/** Why the component is missing (the install hint), or null when it is there. Probed once per process. */
const probes: Record<Component, () => string | null> = {
  torch: () =>
    spawnSync(systemPython, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0
      ? null
      : `${systemPython} cannot import torch: apt-get install python3-torch`,
  chromium: () => (onPath(['chromium', 'chromium-browser']) ? null : 'no chromium on PATH: apt-get install chromium'),
  egl: () =>
    ['/usr/lib/x86_64-linux-gnu/libEGL.so.1', '/usr/lib/aarch64-linux-gnu/libEGL.so.1'].some((f) => fs.existsSync(f))
      ? null
      : 'no libEGL.so.1: apt-get install libegl1 libegl-mesa0',
};
const cache = new Map<Component, string | null>();

/** The install hint when `component` is missing, else null. */
export function missingComponent(component: Component): string | null {
  if (!cache.has(component)) cache.set(component, probes[component]());
  return cache.get(component)!;
}

/** describe(title, fn) when `component` is installed; else a skipped describe and one console line saying what to install. */
export function describeWith(component: Component, title: string, fn: () => void): void {
  const missing = missingComponent(component);
  if (missing === null) {
    describe(title, fn);
    return;
  }
  console.log(`SKIPPED "${title}": ${missing}`);
  describe.skip(title, fn);
}
