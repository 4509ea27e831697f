/**
 * The skip path of describeWith (test/support/components.ts), on a machine that has every component: a vitest of its
 * own runs test/support/fixtures/ with FACTORGEN_PRETEND_MISSING, and we read what a user would see.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const fixture = 'test/support/fixtures/needsComponents.fixture.test.ts';

function vitest(env: Record<string, string>): { code: number | null; out: string } {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && !k.startsWith('FACTORGEN_') && k !== 'NODE_OPTIONS'),
  ) as Record<string, string>;
  const r = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/support/fixtures/vitest.config.ts'], {
    cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...clean, NO_COLOR: '1', FORCE_COLOR: '0', ...env },
  });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

const install = {
  chromium: process.platform === 'darwin'
    ? 'install Google Chrome or Chromium in /Applications, or set FACTORGEN_CHROMIUM to a Chromium executable'
    : '`apt-get install chromium` (Debian/Ubuntu), or set FACTORGEN_CHROMIUM to a Chromium executable',
  egl: '`apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri` (a software WebGPU adapter), or a GPU with its Vulkan driver',
  torch: '`apt-get install python3-torch` (PyTorch for /usr/bin/python3), or set FACTORGEN_PYTHON to a python with torch',
};
const titles = { chromium: 'a suite that drives Chromium', egl: 'a suite on a WebGPU adapter', torch: 'a suite that runs PyTorch' };
const line = (c: keyof typeof install) => `"${titles[c]}" needs ${c}: FACTORGEN_PRETEND_MISSING names it; install ${install[c]}`;

describe('suites that need a system component', () => {
  it('skip with one line each and a summary at the end when missing; the run passes', () => {
    const r = vitest({ FACTORGEN_PRETEND_MISSING: 'chromium,egl,torch' });
    expect(r.code, r.out).toBe(0);
    for (const c of ['chromium', 'egl', 'torch'] as const) {
      expect(r.out.split('\n')).toContain(`factorgen: SKIPPED ${line(c)}`);
    }
    const lines = r.out.split('\n');
    const head = lines.indexOf('factorgen: 3 suites SKIPPED for missing system components (chromium, egl, torch):');
    expect(head, r.out).toBeGreaterThanOrEqual(0);
    // Sorted by file, then title.
    expect(lines.slice(head + 1, head + 5)).toEqual([
      `  ${fixture}: ${line('egl')}`,
      `  ${fixture}: ${line('chromium')}`,
      `  ${fixture}: ${line('torch')}`,
      'factorgen: install those to run every suite (CI runs them all: FACTORGEN_STRICT_COMPONENTS=1 fails on a skip).',
    ]);
    expect(r.out).toMatch(/Tests\s+1 passed \| 3 skipped \(4\)/);
  });

  it('fail the run under FACTORGEN_STRICT_COMPONENTS=1, naming what to install', () => {
    const r = vitest({ FACTORGEN_PRETEND_MISSING: 'chromium,egl,torch', FACTORGEN_STRICT_COMPONENTS: '1' });
    expect(r.code, r.out).toBe(1);
    for (const c of ['chromium', 'egl', 'torch'] as const) {
      expect(r.out).toContain(`Error: factorgen: ${line(c)} (FACTORGEN_STRICT_COMPONENTS=1: a missing component fails the run)`);
    }
    expect(r.out).toMatch(/Tests\s+3 failed \| 1 passed \(4\)/);
    expect(r.out).not.toContain('SKIPPED');
  });
});
