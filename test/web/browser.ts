import * as fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { findChromium } from '../support/components';

/**
 * FACTORGEN_CHROMIUM, else Debian's chromium (apt-get install chromium; `.ci/run` installs it), one on PATH, or on
 * macOS Chrome/Chromium in /Applications (test/support/components.ts). playwright-core drives it; its own browser
 * downloads are not used. Suites that use it are declared with describeWith('chromium', ...), which skips them when none is found.
 */
export const chromiumPath = findChromium() ?? process.env.FACTORGEN_CHROMIUM ?? '/usr/bin/chromium';

/** Launches headless Chromium; as root it needs --no-sandbox (Chromium refuses to start sandboxed as root). */
export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`Chromium not found at ${chromiumPath}: run \`apt-get install chromium\` (as .ci/run does) or set FACTORGEN_CHROMIUM`);
  }
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: root ? ['--no-sandbox'] : [] });
}

/** Collects a page's console errors, uncaught exceptions and failed requests (the tests expect none). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  return errors;
}
