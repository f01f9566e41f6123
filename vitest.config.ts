import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/faults/**', '**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file starts its own nats-server and database; two cores, so two files at a time.
    maxWorkers: 2,
    pool: 'forks',
  },
});
