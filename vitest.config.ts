import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start their own redis-server processes on fixed loopback ports;
    // files run in parallel workers, so each suite picks its own port range.
    pool: 'forks',
  },
});
