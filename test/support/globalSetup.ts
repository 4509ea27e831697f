/**
 * vitest globalSetup: gives test files a folder where suites skipped for a missing system component record themselves
 * (test/support/components.ts), and at the end of the run prints what was skipped and what to install, so a skip is
 * never silent in a long log.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';

type Skip = { component: string; title: string; line: string; file: string };

export default function setup(project: TestProject): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-skips-'));
  project.provide('componentSkipsDir', dir);
  return () => {
    const skips: Skip[] = [];
    for (const f of fs.readdirSync(dir)) {
      for (const l of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) if (l) skips.push(JSON.parse(l) as Skip);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    if (!skips.length) return;
    skips.sort((a, b) => a.file.localeCompare(b.file) || a.title.localeCompare(b.title));
    const components = [...new Set(skips.map((s) => s.component))].sort();
    const out = [
      '',
      `factorgen: ${skips.length} suite${skips.length === 1 ? '' : 's'} SKIPPED for missing system components (${components.join(', ')}):`,
      ...skips.map((s) => `  ${s.file}: ${s.line}`),
      'factorgen: install those to run every suite (CI runs them all: FACTORGEN_STRICT_COMPONENTS=1 fails on a skip).',
      '',
    ];
    process.stderr.write(out.join('\n'));
  };
}
