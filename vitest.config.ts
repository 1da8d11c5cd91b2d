import { defineConfig } from 'vitest/config';

/**
 * Files that replace a module with vi.mock (or render in jsdom) need a fresh module graph of
 * their own. Every other file shares its worker's modules (`isolate: false`): importing the
 * platform, PGlite and Fastify once instead of once per file takes about a third off the suite
 * on a 2-CPU machine. A file in the shared project must leave no global state behind (no
 * process.env edits, no listeners on process, no vi.mock).
 */
const ISOLATED = [
  'test/foundation/access.test.ts',
  'test/foundation/platform.test.ts',
  'test/foundation/validation.test.ts',
  'test/fuzz/api-fuzz.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/helpers/global-setup.ts'],
    // Vitest's pool reads this from the root only: workers run file after file, and each
    // project's own setting below says whether a worker resets its modules between files.
    poolOptions: { forks: { isolate: false }, threads: { isolate: true } },
    projects: [
      {
        extends: true,
        test: {
          name: 'shared',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ISOLATED,
        },
      },
      {
        extends: true,
        test: {
          name: 'isolated',
          include: ISOLATED,
          poolOptions: { forks: { isolate: true } },
        },
      },
      {
        extends: true,
        test: {
          // Component tests (jsdom, per-file `@vitest-environment`) and the API-types check: a
          // jsdom shared by several files loses their renders, so each file gets a thread of its own.
          name: 'web',
          include: ['web/**/*.test.{ts,tsx}'],
          pool: 'threads',
        },
      },
    ],
  },
});
