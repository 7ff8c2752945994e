import { defineConfig } from '@playwright/test';

/**
 * Browser tests against the TEST build (`npm run build:test` first; tests/run-all.sh does) in Debian's Chromium.
 * Never downloads a browser. WebGPU here is Chromium's SwiftShader adapter (see ../shared/notes/webgpu-here.md).
 */
// CXR_E2E_PORT lets a second checkout run its browser tests beside another's preview server.
const PORT = Number(process.env.CXR_E2E_PORT ?? 4173);
// CXR_E2E_DIST lets parallel work in one checkout test its own build (`vite build --mode test --outDir DIR`).
const DIST = process.env.CXR_E2E_DIST ?? 'dist';

export default defineConfig({
  testDir: 'tests/e2e',
  // dist/ must be a test build (`npm run build:test`): the specs read state through its test hook.
  globalSetup: './tests/e2e/global-setup.ts',
  outputDir: 'test-results',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 30_000 },
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    headless: true,
    viewport: { width: 1400, height: 900 },
    trace: 'off',
    // The service worker precaches ORT's 28 MB wasm in every fresh context; only the offline test needs it.
    serviceWorkers: 'block',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
        // never --use-vulkan: Debian's lavapipe breaks Chromium's compositor here
      ],
    },
  },
  webServer: {
    command: `npx vite preview --host 127.0.0.1 --port ${PORT} --strictPort --outDir ${DIST}`,
    url: `http://127.0.0.1:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
  },
});
