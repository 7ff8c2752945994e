/**
 * The browser tests read the app's state through the test hook (window.cxrStudio), which only test builds have
 * (`npm run build:test` = `vite build --mode test`; production builds compile it out, see app/main.tsx).
 * Fail at once with that instruction instead of 60 failing tests.
 */
import fs from 'node:fs';
import path from 'node:path';

export default function globalSetup(): void {
  const assets = path.resolve(import.meta.dirname, '../..', process.env.CXR_E2E_DIST ?? 'dist', 'assets');
  if (!fs.existsSync(assets)) return; // the specs skip or fail with "build first" themselves
  const hasHook = fs.readdirSync(assets).some((f) => f.endsWith('.js') && fs.readFileSync(path.join(assets, f), 'utf8').includes('cxrStudio'));
  if (!hasHook) throw new Error('dist/ is a production build without the test hook: run `npm run build:test` (vite build --mode test) before the browser tests');
}
