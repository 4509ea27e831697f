import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // Suites run only by test/support/components.test.ts, in a vitest of their own.
    exclude: [...configDefaults.exclude, 'test/support/fixtures/**'],
    // tfjs engines are process-global; forks keep each test file in its own process.
    pool: 'forks',
    // Suites needing chromium / a WebGPU adapter / PyTorch skip loudly when missing; the summary comes from here.
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
