import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

// Tests run against the packages' sources, never their build/ output (which may be stale): the packages' exports
// carry a "source" condition (src/*.ts) that Node and TypeScript ignore. In-process imports ask for it through vite's
// conditions (vite's server defaults, with "source" first). Child processes the tests start (the CLI through
// apps/cli/bin/factorgen.mjs, probes) get it through NODE_OPTIONS, with tsx to run the .ts files it selects; tsx is
// named by absolute URL because many children run in a temporary working directory.
const sourceConditions = ['source', 'module', 'node', 'development|production'];
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const childNodeOptions = [process.env.NODE_OPTIONS, '--conditions=source', `--import=${tsxLoader}`].filter(Boolean).join(' ');

export default defineConfig({
  resolve: { conditions: sourceConditions },
  ssr: { resolve: { conditions: sourceConditions } },
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // Suites run only by test/support/components.test.ts, in a vitest of their own.
    exclude: [...configDefaults.exclude, 'test/support/fixtures/**'],
    // tfjs engines are process-global; forks keep each test file in its own process.
    pool: 'forks',
    // Suites needing chromium / a WebGPU adapter / PyTorch skip loudly when missing; the summary comes from here.
    globalSetup: ['test/support/globalSetup.ts'],
    env: { NODE_OPTIONS: childNodeOptions },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
