import { defineConfig } from 'vitest/config';

// Unit tests run in Node. Browser-only behaviour (createImageBitmap, Cache Storage) is exercised through injected
// interfaces; real data is read in place from ../shared (or $CXR_SHARED). A test whose artifact or data is missing
// skips only where ../shared is absent and outside CI; elsewhere it fails (lacks() in tests/unit/helpers/shared.ts).
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
