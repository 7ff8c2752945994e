/**
 * Storage you can see and trust (issue 19.4) in Chromium: the quota check before a download, half-written cache
 * entries swept at start-up, sha256 of cached bytes checked before a session, a hostile local model pack refused,
 * the SAM embedding cache counted and cleared in the Models view; and a failed download said once (issue 18.9).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { addFiles, kermanyImage, needsModel, needsSharedData, needsSharedFile, openApp, readManifest, SHARED, smallClassifierId, waitForClassification, watchErrors } from './helpers';

const ID = smallClassifierId();
const MODEL_CACHE = 'cxr-models-v1';

function firstFile(id: string) {
  return Object.values(readManifest()!.models.find((m) => m.id === id)!.variants)[0].files[0];
}

async function openModels(page: Page) {
  await page.getByRole('button', { name: 'Models' }).click();
}

/** How often `text` occurs in what the page shows. */
async function occurrences(page: Page, text: string): Promise<number> {
  const body = await page.locator('body').innerText();
  return body.split(text).length - 1;
}

test.describe('storage', () => {
  needsModel(ID);

  test('a download that does not fit the storage quota is refused before any byte is fetched, naming both numbers', async ({ page }) => {
    const errors = watchErrors(page);
    // A nearly full origin: navigator.storage.estimate() reports 1 KB free of a 2 GB quota.
    await page.addInitScript(() => {
      const quota = 2 * 2 ** 30;
      Object.defineProperty(navigator.storage, 'estimate', { value: async () => ({ quota, usage: quota - 1024 }) });
    });
    let modelRequests = 0;
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.includes(`/models/${ID}/`)) modelRequests++;
    });
    await openApp(page, { backend: 'wasm' });
    await openModels(page);
    await page.getByTestId(`download-${ID}`).click();
    const alert = page.getByTestId('alert-item').filter({ hasText: 'of browser storage but only' });
    await expect(alert).toContainText(/needs \d+\.\d MB of browser storage but only 0\.0 MB is free \(2048\.0 MB used of a 2048\.0 MB quota\); nothing was downloaded/);
    await expect(page.getByTestId(`model-state-${ID}`)).toHaveText('not downloaded');
    expect(modelRequests).toBe(0);
    expect(errors).toEqual([]);
  });

  test('a cached file with no metadata (tab closed mid-write) is removed at start-up and the Models view says so', async ({ page }) => {
    await openApp(page);
    // This page's own start-up sweep must be over before the orphan is written (init sweeps, then loads the manifest):
    // on a slow machine it ran after the put, removed the orphan here, and the reloaded page had nothing to report.
    await page.waitForFunction(() => !!(window as any).cxrStudio?.store.getState().manifest, undefined, { timeout: 60_000 });
    const orphan = new URL('/models/orphan-test/model.onnx', page.url()).href;
    await page.evaluate(
      async ([name, url]) => {
        const c = await caches.open(name);
        await c.put(url, new Response(new Uint8Array(3 * 2 ** 20), { headers: { 'Content-Length': String(3 * 2 ** 20) } }));
      },
      [MODEL_CACHE, orphan],
    );
    await page.reload();
    await openModels(page);
    await expect(page.getByTestId('cache-repair')).toHaveText('At start-up the model cache removed 1 incomplete file (3.0 MB) with no record, left by a download interrupted mid-write.');
    const left = await page.evaluate(async (name) => (await (await caches.open(name)).keys()).map((r) => r.url), MODEL_CACHE);
    expect(left).not.toContain(orphan);
    // The same on Verify, while the page is open; the verified model itself stays.
    await page.getByTestId(`download-${ID}`).click();
    await expect(page.getByTestId(`model-state-${ID}`)).toHaveText(/^downloaded \(/);
    await page.evaluate(
      async ([name, url]) => (await caches.open(name)).put(url, new Response(new Uint8Array(2 ** 20), { headers: { 'Content-Length': String(2 ** 20) } })),
      [MODEL_CACHE, orphan],
    );
    await page.getByTestId(`download-${ID}`).click(); // now "Verify"
    await expect(page.getByTestId('cache-repair')).toHaveText('On Verify the model cache removed 1 incomplete file (1.0 MB) with no record, left by a download interrupted mid-write.');
    await expect(page.getByTestId('alert-item').filter({ hasText: 're-hashed, sha256 matches' })).toHaveCount(1);
    await expect(page.getByTestId(`model-state-${ID}`)).toHaveText(/^downloaded \(/);
  });

  test('a cached file whose bytes no longer match its sha256 is refused before a session, named, evicted, and downloaded again', async ({ page }) => {
    needsSharedData();
    const errors = watchErrors(page);
    const file = firstFile(ID);
    await openApp(page, { backend: 'wasm' });
    await openModels(page);
    await page.getByTestId(`download-${ID}`).click();
    await expect(page.getByTestId(`model-state-${ID}`)).toHaveText(/^downloaded \(/);
    // Same length, one byte changed, metadata untouched: only hashing the bytes finds it.
    await page.evaluate(
      async ([name, p]) => {
        const c = await caches.open(name);
        const key = (await c.keys()).find((r) => new URL(r.url).pathname === `/models/${p}`)!;
        const res = (await c.match(key))!;
        const bytes = new Uint8Array(await res.arrayBuffer());
        bytes[bytes.length >> 1] ^= 0xff;
        await c.put(key, new Response(bytes, { headers: res.headers }));
      },
      [MODEL_CACHE, file.path],
    );
    await page.getByRole('button', { name: 'Viewer' }).click();
    await page.getByTestId('classifier-select').selectOption(ID);
    await addFiles(page, [kermanyImage('NORMAL', 1)]);
    await expect(page.getByTestId('alert-item').filter({ hasText: 'does not match its sha256' })).toContainText(`${file.path} in the model cache does not match its sha256`);
    await expect(page.getByTestId('alert-item').filter({ hasText: 'does not match its sha256' })).toContainText(`manifest ${file.sha256.slice(0, 12)}`);
    const stillCached = await page.evaluate(
      async ([name, p]) => (await (await caches.open(name)).keys()).some((r) => new URL(r.url).pathname === `/models/${p}`),
      [MODEL_CACHE, file.path],
    );
    expect(stillCached).toBe(false);
    // The next use downloads a good copy and classifies.
    await openModels(page);
    await expect(page.getByTestId(`model-state-${ID}`)).toHaveText('not downloaded');
    await page.getByRole('button', { name: 'Viewer' }).click();
    await addFiles(page, [kermanyImage('NORMAL', 2)]);
    await waitForClassification(page);
    expect(errors).toEqual([]);
  });

  test('a hostile local model pack (percent-encoded dot segments) is refused and cannot touch another model', async ({ page }) => {
    const file = firstFile(ID);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-hostile-pack-'));
    const pack = path.join(root, 'evil-pack');
    const hostilePath = `x/%2e%2E/${file.path}`;
    fs.mkdirSync(path.join(pack, 'x', '%2e%2E', path.dirname(file.path)), { recursive: true });
    const payload = Buffer.alloc(file.bytes, 7);
    fs.writeFileSync(path.join(pack, hostilePath), payload);
    const entry = structuredClone(readManifest()!.models.find((m) => m.id === ID)!) as unknown as Record<string, unknown>;
    entry.id = 'evil';
    entry.variants = { fp32: { dtype: 'fp32', files: [{ role: 'model', path: hostilePath, bytes: payload.length, sha256: 'a'.repeat(64) }] } };
    fs.writeFileSync(path.join(pack, 'manifest.json'), JSON.stringify({ version: 1, models: [entry] }));
    await openApp(page, { backend: 'wasm' });
    await openModels(page);
    await page.getByTestId('model-folder-input').setInputFiles(pack);
    await expect(page.getByTestId('alert-item').filter({ hasText: 'cannot be used as a model source' })).toContainText(
      `Invalid model manifest: models[0].variants.fp32.files[0].path must be a relative path inside the model source (got '${hostilePath}'`,
    );
    await expect(page.getByTestId('model-source')).toHaveText("the app's own models");
    const keys = await page.evaluate(async (name) => (await (await caches.open(name)).keys()).map((r) => r.url), MODEL_CACHE);
    expect(keys).toEqual([]);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a failed download is said once (issue 18.9), and the progress bar shows it after the alert is dismissed', async ({ page }) => {
    needsSharedData();
    const file = firstFile(ID);
    await page.route(`**/models/${file.path}`, (route) => route.fulfill({ status: 404, body: 'not found' }));
    await openApp(page, { backend: 'wasm', classifier: ID });
    await addFiles(page, [kermanyImage('NORMAL', 1)]);
    const alert = page.getByTestId('alert-item').filter({ hasText: `Model file ${file.path} was not found` });
    await expect(alert).toHaveCount(1);
    const message = (await alert.locator('span').innerText()).trim();
    expect(message).toMatch(/^Download of .* failed: Model file .* was not found \(HTTP 404/);
    await expect(page.getByTestId(`runtime-${ID}`)).toContainText('model download failed');
    expect(await occurrences(page, message)).toBe(1);
    // In the Models view, the same download again: one alert, the bar says "Failed" without repeating it...
    await openModels(page);
    await page.getByTestId(`download-${ID}`).click();
    await expect(page.getByTestId('download-progress')).toContainText('Failed: ');
    await expect(alert).toHaveCount(1);
    expect(await occurrences(page, message)).toBe(1);
    // ...until the alert is dismissed: then the bar shows the reason, still once.
    await alert.getByRole('button', { name: 'Dismiss' }).click();
    await expect(page.getByTestId('download-error')).toHaveText(message);
    expect(await occurrences(page, message)).toBe(1);
  });

  test('the SAM embedding cache is counted in the Models view and can be cleared', async ({ page }) => {
    const lungs = path.join(SHARED, 'data/cxr-lung-masks/images');
    needsSharedFile(lungs);
    needsModel('tiny-sam');
    test.setTimeout(240_000);
    await openApp(page, { backend: 'wasm' });
    await openModels(page);
    await expect(page.getByTestId('embedding-cache-stats')).toHaveText('0 images, 0 B');
    await page.getByRole('button', { name: 'Segment', exact: true }).click();
    await page.getByTestId('segment-model').selectOption('tiny-sam');
    await addFiles(page, [path.join(lungs, fs.readdirSync(lungs).sort()[0])]);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 120_000 });
    await openModels(page);
    await expect(page.getByTestId('embedding-cache-stats')).toHaveText(/^1 image, \d/);
    await expect(page.getByTestId('embedding-cache')).toContainText('of a 256 MB cap');
    await page.getByTestId('embedding-cache-clear').click();
    await expect(page.getByTestId('embedding-cache-stats')).toHaveText('0 images, 0 B');
  });
});
