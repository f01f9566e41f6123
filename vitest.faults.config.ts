import { defineConfig } from 'vitest/config';

// The fault-injection suite runs the whole system as separate processes; it runs on its own,
// after the other suites, so it has the machine's two cores to itself.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 180_000,
    // Starting the system (a cluster of three, setup, five processes) on two loaded cores.
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
