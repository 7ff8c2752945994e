import { defineConfig } from 'vitest/config';

// Unit tests run in Node. Browser-only behaviour (createImageBitmap, Cache Storage) is exercised through injected
// interfaces; real data is read in place from ../shared (or $CXR_SHARED) and tests skip with a reason when it is absent.
export default defineConfig({
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two shared CPU cores: keep parallelism low so training elsewhere is not starved.
    maxWorkers: 2,
    pool: 'forks',
  },
});
