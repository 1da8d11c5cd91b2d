import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // web/: component tests (jsdom, per-file `@vitest-environment`) and the API-types check.
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'web/**/*.test.{ts,tsx}'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
