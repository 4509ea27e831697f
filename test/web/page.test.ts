import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { readTokenFile } from '@factorgen/io';
import { modelSite, serveSite, type Site } from '@factorgen/web';
import { launchChromium, watchErrors } from './browser';
import { describeWith } from '../support/components';

const root = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-page-'));

/** What the page puts on window.factorgen (see apps/web/src/page/main.ts). */
type PageState = {
  state: string;
  backend: { name: string; detail: string } | null;
  error: string | null;
  last: { labels: number[]; tokens: number[]; seconds: number } | null;
};

/** Starts `factorgen serve --port 0` and resolves with the URL it prints on stdout. */
function startServe(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'serve', '--generator', 'pretrained/generator', '--port', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(http:\/\/\S+)\n/m.exec(out);
      if (m) resolve({ url: m[1], child });
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`factorgen serve exited with ${code}: ${err}`)));
  });
}

async function waitState(page: Page, states: string[], timeout = 120_000): Promise<PageState> {
  await page.waitForFunction((s) => s.includes((window as unknown as { factorgen?: PageState }).factorgen?.state ?? ''), states, { timeout });
  return page.evaluate(() => (window as unknown as { factorgen: PageState }).factorgen);
}

/** Picks classes, images per class and seed in the form (other settings keep the CLI's defaults) and samples. */
async function sampleInPage(page: Page, classes: number[], perClass: number, seed: string): Promise<PageState> {
  await page.click('#none');
  for (const c of classes) await page.check(`#classes input[value="${c}"]`);
  await page.fill('#per-class', String(perClass));
  await page.fill('#seed', seed);
  await page.click('#sample');
  return waitState(page, ['done', 'error'], 150_000);
}

describeWith('chromium', 'the sampling page in headless Chromium', () => {
  let browser: Browser;
  let served: { url: string; child: ChildProcess };
  beforeAll(async () => {
    [browser, served] = await Promise.all([launchChromium(), startServe()]);
  });
  afterAll(async () => {
    served?.child.kill('SIGTERM');
    await browser?.close();
  });

  it('samples 2 classes x 2 images on wasm with a fixed seed: its tokens equal those of factorgen sample --backend wasm', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    const errors = watchErrors(page);
    await page.goto(`${served.url}?backend=wasm`);
    const ready = await waitState(page, ['ready', 'error']);
    expect(ready.error).toBeNull();
    expect(ready.backend?.name).toBe('wasm');
    expect(await page.textContent('#backend')).toContain('wasm');
    const done = await sampleInPage(page, [3, 7], 2, '1234');
    expect(done.error).toBeNull();
    expect(done.last?.labels).toEqual([3, 3, 7, 7]);
    await page.screenshot({ path: path.join(work, 'page.png'), fullPage: true });
    expect(await page.locator('#grid .row').count()).toBe(2);
    expect(await page.locator('#grid canvas.cell').count()).toBe(4);
    expect(await page.textContent('#grid .row .label')).toBe('3 dress');
    expect(await page.evaluate(() => [(document.getElementById('progress') as HTMLProgressElement).value, (document.getElementById('progress') as HTMLProgressElement).max])).toEqual([4 * 49, 4 * 49]);
    await page.close();
    expect(errors).toEqual([]);

    // The same request through the CLI on wasm (its defaults are the page's: guidance 2, temperature 1, batch 40).
    const cli = spawnSync(
      process.execPath,
      [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'sample', '--generator', 'pretrained/generator', '--backend', 'wasm',
        '--classes', '3,7', '--per-class', '2', '--seed', '1234', '--out', path.join(work, 'cli')],
      { cwd: root, encoding: 'utf8', timeout: 120_000 },
    );
    expect(cli.status, cli.stderr).toBe(0);
    const set = readTokenFile(path.join(work, 'cli', 'samples.tokens'));
    expect(Array.from(set.labels)).toEqual([3, 3, 7, 7]);
    expect(done.last?.tokens).toEqual(Array.from(set.tokens));
    expect(fs.statSync(path.join(work, 'page.png')).size).toBeGreaterThan(10_000);
  });

  it('loads an exported tokenizer in the legacy format 1 (weights.bin) under the id the generator recorded, and samples with it', async () => {
    const exported = path.join(work, 'tok-export');
    const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/factorgen.mjs'), 'export', '--from', 'pretrained/tokenizer', '--to', exported, '--format', 'factorgen'], {
      cwd: root, encoding: 'utf8', timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const site = await modelSite({ generator: path.join(root, 'pretrained/generator'), tokenizer: exported });
    const served = site.get('model/tokenizer/weights.bin');
    expect(served && 'file' in served ? fs.statSync(served.file).size : 0).toBe(fs.statSync(path.join(exported, 'weights.bin')).size);
    const trainedWith = (JSON.parse(fs.readFileSync(path.join(root, 'pretrained/generator/config.json'), 'utf8')) as { extra: { tokenizerId: string } }).extra.tokenizerId;
    const server = await serveSite(site, { port: 0 });
    try {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(`${server.url}?backend=wasm`);
      const ready = await waitState(page, ['ready', 'error']);
      expect(ready.error).toBeNull();
      expect(await page.textContent('#model')).toContain(`tokenizer ${trainedWith}`);
      const done = await sampleInPage(page, [3], 1, '1234');
      expect(done.error).toBeNull();
      expect(done.last?.labels).toEqual([3]);
      expect(await page.locator('#grid canvas.cell').count()).toBe(1);
      await page.close();
      expect(errors).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('an unknown ?backend= is one line in the page', async () => {
    const page = await browser.newPage();
    await page.goto(`${served.url}?backend=nope`);
    const st = await waitState(page, ['ready', 'error']);
    expect(st.error).toBe('?backend=nope: unknown backend (expected webgpu, wasm, webgl, cpu)');
    expect((await page.textContent('#error'))?.trim()).toBe(st.error);
    await page.close();
  });

  it('a missing or mismatched model file is one line in the page, not a blank screen', async () => {
    const site = await modelSite({ generator: path.join(root, 'pretrained/generator') });
    const missing = new Map(site);
    missing.delete('model/tokenizer/model.safetensors');
    // Same shapes, one weight changed: a different tokenizer than the generator was trained with.
    const weights = new Uint8Array(fs.readFileSync(path.join(root, 'pretrained/tokenizer/model.safetensors')));
    weights[8 + Buffer.from(weights).readUInt32LE(0) + 100] ^= 1; // a byte of the data, after the 8-byte length and the header
    // The id the shipped generator records for its tokenizer (what the page must name).
    const trainedWith = (JSON.parse(fs.readFileSync(path.join(root, 'pretrained/generator/config.json'), 'utf8')) as { extra: { tokenizerId: string } }).extra.tokenizerId;
    expect(trainedWith).toMatch(/^[0-9a-f]{16}$/);
    const swapped = new Map(site);
    swapped.set('model/tokenizer/model.safetensors', { data: weights });
    const cases: [Site, RegExp][] = [
      [missing, /^model\/tokenizer\/model\.safetensors: missing \(HTTP 404\)$/],
      [swapped, new RegExp(`^model/tokenizer: tokenizer [0-9a-f]{16} is not the one the generator was trained with \\(${trainedWith}\\)$`)],
    ];
    for (const [s, message] of cases) {
      const server = await serveSite(s, { port: 0 });
      try {
        const page = await browser.newPage();
        await page.goto(`${server.url}?backend=wasm`);
        const st = await waitState(page, ['ready', 'error']);
        expect(st.state).toBe('error');
        expect(st.error).toMatch(message);
        expect(await page.isVisible('#error')).toBe(true);
        expect((await page.textContent('#error'))?.trim()).toBe(st.error);
        await page.close();
      } finally {
        await server.close();
      }
    }
  });
});
