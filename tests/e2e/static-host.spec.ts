/**
 * Issue 8 item 8: on a static host that sends no COOP/COEP headers, the service worker (public/coi-sw.js) adds
 * them, the page reloads once into cross-origin isolation, and ONNX Runtime's WASM backend runs with threads in the
 * model worker. The host here is a plain Node file server over dist/ (no special headers at all).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect, test } from '@playwright/test';
import { addFiles, hasSharedData, kermanyImage, REPO, smallClassifierId, watchErrors } from './helpers';

test.use({ serviceWorkers: 'allow' });

const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm',
  '.json': 'application/json', '.webmanifest': 'application/manifest+json', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.onnx': 'application/octet-stream', '.txt': 'text/plain',
};

function staticServer(root: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let p = path.join(root, decodeURIComponent(url.pathname));
    if (!p.startsWith(root)) return void res.writeHead(403).end();
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) p = path.join(p, 'index.html');
    if (!fs.existsSync(p)) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'Content-Type': TYPES[path.extname(p)] ?? 'application/octet-stream', 'Content-Length': fs.statSync(p).size });
    fs.createReadStream(p).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

test('static host without COOP/COEP: the service worker isolates the page; WASM runs threaded', async ({ page }) => {
  test.skip(!hasSharedData(), 'needs ../shared/data/kermany-cxr-224');
  const dist = path.join(REPO, 'dist');
  test.skip(!fs.existsSync(path.join(dist, 'coi-sw.js')), 'build first (npx vite build)');
  const server = await staticServer(dist);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const errors = watchErrors(page);
    const first = await fetch(`${base}/`);
    expect(first.headers.get('cross-origin-embedder-policy')).toBeNull(); // the host sends none
    await page.goto(`${base}/`);
    // First visit: not isolated; the service worker installs, takes control, the page reloads once.
    await expect
      .poll(async () => page.evaluate(() => globalThis.crossOriginIsolated === true).catch(() => false), { timeout: 90_000 })
      .toBe(true);
    expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe('function');
    const id = smallClassifierId();
    await page.getByTestId('backend-select').selectOption('wasm');
    await page.getByTestId('classifier-select').selectOption(id);
    await addFiles(page, [kermanyImage('NORMAL', 1)]);
    await expect(page.getByTestId('classification-result')).toBeVisible({ timeout: 90_000 });
    const threads = Number(await page.getByTestId(`runtime-${id}`).getByTestId('runtime-threads').innerText());
    expect(threads).toBeGreaterThan(1); // the model worker is isolated too (its report reads self.crossOriginIsolated)
    expect(errors).toEqual([]);
  } finally {
    server.close();
  }
});
