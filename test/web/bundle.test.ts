import { describe, expect, it } from 'vitest';
import { bundlePage } from '@factorgen/web';

describe('the web page bundle', () => {
  it('builds from the packages\' browser entries, with nothing that needs Node', async () => {
    // esbuild (platform browser) fails on node:fs, sharp, worker_threads or node:crypto anywhere the page reaches, and
    // on a name a browser entry does not export; the error names the file and the import.
    const js = await bundlePage();
    expect(js.length).toBeGreaterThan(100_000);
    for (const nodeOnly of ['node:fs', 'node:crypto', 'worker_threads', 'sharp']) expect(js).not.toMatch(new RegExp(`from\\s*["']${nodeOnly}["']`));
    // The page's own code made it in (sampling plan and backend choice), not only tfjs.
    expect(js).toContain('/sample');
    expect(js).toContain('WASM_HAS_MULTITHREAD_SUPPORT');
  });
});
