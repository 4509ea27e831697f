/**
 * Test suites that need a system component outside npm: headless Chromium (test/web), a WebGPU adapter (test/webgpu:
 * on a machine without a GPU that is Mesa's EGL/llvmpipe) and PyTorch for /usr/bin/python3. On a machine without one,
 * `describeWith` skips the suite with one line naming what to install, and the end of the run lists every skip
 * (test/support/globalSetup.ts). CI sets FACTORGEN_STRICT_COMPONENTS=1 (`.ci/run`), where a missing component fails
 * the suite instead. FACTORGEN_PRETEND_MISSING=chromium,egl,torch makes components look missing, to test the skip
 * path on a machine that has them (test/support/components.test.ts).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, inject, it } from 'vitest';

export type Component = 'chromium' | 'egl' | 'torch';

export const COMPONENTS: readonly Component[] = ['chromium', 'egl', 'torch'];

/** Set by `.ci/run`: a missing component fails the run instead of skipping (not `CI`, which users' own CI sets too). */
export const STRICT_ENV = 'FACTORGEN_STRICT_COMPONENTS';
/** Comma-separated components to treat as missing (tests of the skip path). */
export const PRETEND_ENV = 'FACTORGEN_PRETEND_MISSING';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder where each skipped suite leaves one JSON line for the end-of-run summary (globalSetup.ts). */
    componentSkipsDir: string;
  }
}

/** Whether a component is usable here; when not, why and what to install, as one line each. */
export type ComponentStatus = { available: true; detail: string } | { available: false; why: string; install: string };

/** Chromium or Chrome executables looked for when FACTORGEN_CHROMIUM is unset, in order. */
function chromiumCandidates(): string[] {
  const home = os.homedir();
  const mac = [
    '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
    '/Applications/Chromium.app/Contents/MacOS/Chromium',
    '/Applications/Google Chrome Canary.app/Contents/MacOS/Google Chrome Canary',
    path.join(home, 'Applications/Google Chrome.app/Contents/MacOS/Google Chrome'),
    path.join(home, 'Applications/Chromium.app/Contents/MacOS/Chromium'),
  ];
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  const onPath = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).flatMap((d) => names.map((n) => path.join(d, n)));
  return process.platform === 'darwin' ? [...mac, ...onPath] : ['/usr/bin/chromium', ...onPath, '/snap/bin/chromium'];
}

/**
 * The Chromium the browser tests drive: FACTORGEN_CHROMIUM when set (it must exist), else Debian's /usr/bin/chromium,
 * a chromium/google-chrome on PATH, or on macOS the usual app bundles. Null when none is found.
 */
export function findChromium(): string | null {
  const forced = process.env.FACTORGEN_CHROMIUM;
  if (forced) return fs.existsSync(forced) ? forced : null;
  return chromiumCandidates().find((p) => fs.existsSync(p)) ?? null;
}

function chromiumInstallHint(): string {
  return process.platform === 'darwin'
    ? 'install Google Chrome or Chromium in /Applications, or set FACTORGEN_CHROMIUM to a Chromium executable'
    : '`apt-get install chromium` (Debian/Ubuntu), or set FACTORGEN_CHROMIUM to a Chromium executable';
}

const EGL_INSTALL = '`apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri` (a software WebGPU adapter), or a GPU with its Vulkan driver';
const TORCH_INSTALL = '`apt-get install python3-torch` (PyTorch for /usr/bin/python3), or set FACTORGEN_PYTHON to a python with torch';

/**
 * Asks Dawn (the `webgpu` package) for an adapter in a child process, the routes `--backend webgpu` tries: the default
 * backend (Vulkan on Linux, Metal on macOS), then OpenGL through surfaceless EGL. A child, so a native failure or Dawn's
 * stderr chatter stays out of the test process; ~0.5 s.
 */
function probeWebGpuAdapter(): ComponentStatus {
  const script = `
    const m = require('webgpu');
    process.env.EGL_PLATFORM ??= 'surfaceless';
    (async () => {
      for (const [flags, featureLevel] of [[[], 'core'], [['backend=opengl'], 'compatibility']]) {
        try {
          const a = await m.create(flags).requestAdapter({ featureLevel });
          if (a) { process.stdout.write(a.info.description || a.info.device || 'an adapter'); process.exit(0); }
        } catch {}
      }
      process.exit(3);
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: path.resolve(__dirname, '../..'), encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return { available: true, detail: r.stdout.trim() };
  return { available: false, why: 'no WebGPU adapter starts (no GPU driver, no Mesa EGL)', install: EGL_INSTALL };
}

/** The python the PyTorch suites run: FACTORGEN_PYTHON, else /usr/bin/python3 (Debian's python3-torch installs there). */
export const pythonPath = process.env.FACTORGEN_PYTHON ?? '/usr/bin/python3';
/** The same python, under the name the twin's suites use. */
export const systemPython = pythonPath;

function probeTorch(): ComponentStatus {
  const r = spawnSync(pythonPath, ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8', timeout: 120_000, env: { ...process.env, OMP_NUM_THREADS: '1', OMP_WAIT_POLICY: 'PASSIVE' },
  });
  if (r.status === 0) return { available: true, detail: `torch ${r.stdout.trim()}` };
  return { available: false, why: `\`import torch\` fails in ${pythonPath}`, install: TORCH_INSTALL };
}

function pretendedMissing(): Set<string> {
  return new Set((process.env[PRETEND_ENV] ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

const cache = new Map<Component, ComponentStatus>();

/** Whether `component` is usable on this machine (probed once per test file), honouring FACTORGEN_PRETEND_MISSING. */
export function componentStatus(component: Component): ComponentStatus {
  if (pretendedMissing().has(component)) {
    const install = component === 'chromium' ? chromiumInstallHint() : component === 'egl' ? EGL_INSTALL : TORCH_INSTALL;
    return { available: false, why: `${PRETEND_ENV} names it`, install };
  }
  let s = cache.get(component);
  if (!s) {
    if (component === 'chromium') {
      const found = findChromium();
      const forced = process.env.FACTORGEN_CHROMIUM;
      s = found
        ? { available: true, detail: found }
        : { available: false, why: forced ? `FACTORGEN_CHROMIUM=${forced} does not exist` : 'no Chromium or Chrome found', install: chromiumInstallHint() };
    } else if (component === 'egl') {
      s = probeWebGpuAdapter();
    } else {
      s = probeTorch();
    }
    cache.set(component, s);
  }
  return s;
}

/** What a suite lacks, in one line: `"title" needs X: why; install Y` (the skip line, the summary and strict mode's failure say it). */
export function missingLine(component: Component, title: string, s: { why: string; install: string }): string {
  return `"${title}" needs ${component}: ${s.why}; install ${s.install}`;
}

/**
 * `describe(title, fn)` when `component` is usable; otherwise the suite is skipped with one stderr line naming what to
 * install, recorded for the end-of-run summary. Under FACTORGEN_STRICT_COMPONENTS=1 a missing component instead
 * registers one failing test carrying the same line, so the run fails.
 */
export function describeWith(component: Component, title: string, fn: () => void): void {
  const s = componentStatus(component);
  if (s.available) {
    describe(title, fn);
    return;
  }
  const line = missingLine(component, title, s);
  if (process.env[STRICT_ENV] === '1') {
    describe(title, () => {
      it(`needs ${component}`, () => {
        throw new Error(`factorgen: ${line} (${STRICT_ENV}=1: a missing component fails the run)`);
      });
    });
    return;
  }
  process.stderr.write(`factorgen: SKIPPED ${line}\n`);
  recordSkip({ component, title, line, file: currentTestFile() });
  describe.skip(`${title} [needs ${component}]`, fn);
}

function currentTestFile(): string {
  // vitest sets VITEST_POOL_ID etc. but not the file; the stack names the caller's file.
  const stack = new Error().stack ?? '';
  const m = /(\/[^\s()]+\.test\.ts)/.exec(stack);
  return m ? path.relative(path.resolve(__dirname, '../..'), m[1]!) : '?';
}

function recordSkip(rec: { component: Component; title: string; line: string; file: string }): void {
  let dir: string | undefined;
  try {
    dir = inject('componentSkipsDir');
  } catch {
    dir = undefined; // run without the project's globalSetup: the stderr line is all there is
  }
  if (!dir || !fs.existsSync(dir)) return;
  fs.appendFileSync(path.join(dir, `${process.pid}.jsonl`), `${JSON.stringify(rec)}\n`);
}
