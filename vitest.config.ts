import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Test files that load a model run one after another: llama.cpp threads spin while they
    // wait, so two overlapping model runs on 2 cores slow each other down by orders of magnitude.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
