import { defineConfig } from 'vitest/config';

// The suite's settings, here rather than in the npm script, so `npx vitest run <any path>` runs a
// file the way `npm test` does: files one after another (they share 2 cores and the test servers)
// and limits sized for real inference on a small machine.
export default defineConfig({
  test: {
    dir: 'test',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
