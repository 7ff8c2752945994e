/**
 * The page itself (issues 19.3, 19.5, 18.9): its Content-Security-Policy holds while the app classifies on WASM and
 * WebGPU, opens a DICOM and reads a remote model source, with no violation; leaving or updating the page while a
 * batch runs asks first; model menus name a random-weights fixture once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { addFiles, DICOM_DIR, KERMANY, kermanyImage, needsModel, needsSharedData, openApp, readManifest, REPO, smallClassifierId, waitForClassification, watchErrors } from './helpers';

const ID = smallClassifierId();
const DIST = path.join(REPO, process.env.CXR_E2E_DIST ?? 'dist');
const MODELS = path.join(DIST, 'models');

/** Record every CSP violation the page reports (event and console), from before the app starts. */
async function watchCsp(page: Page): Promise<{ events: () => Promise<string[]>; console: string[] }> {
  const consoleMsgs: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Content-Security-Policy/i.test(m.text())) consoleMsgs.push(m.text());
  });
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return { events: () => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp), console: consoleMsgs };
}

/** Start a long batch (many images, so it is still running while the test checks). */
async function startLongBatch(page: Page) {
  await page.getByRole('button', { name: 'Batch' }).click();
  const dir = path.join(KERMANY, 'test', 'NORMAL');
  const files = fs.readdirSync(dir).sort().slice(0, 200).map((f) => ({ name: f, mimeType: 'image/jpeg', buffer: fs.readFileSync(path.join(dir, f)) }));
  await page.getByTestId('batch-file-input').setInputFiles(files);
  await expect(page.getByTestId('batch-cancel')).toBeVisible();
  await expect.poll(() => page.evaluate(() => (window as any).cxrStudio.store.getState().batch.running)).toBe(true);
}

async function stopBatch(page: Page) {
  await page.getByTestId('batch-cancel').click();
  await expect.poll(() => page.evaluate(() => (window as any).cxrStudio.store.getState().batch.running)).toBe(false);
}

test.describe('page', () => {
  needsModel(ID);

  test('Content-Security-Policy: enforced, and the app classifies (WASM, WebGPU), opens DICOM and reads a remote source with no violation', async ({ page }) => {
    needsSharedData();
    test.setTimeout(300_000);
    const errors = watchErrors(page);
    const csp = await watchCsp(page);
    await openApp(page, { backend: 'wasm', classifier: ID });
    const policy = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
    expect(policy).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(policy).toContain("connect-src 'self' https:");
    expect(policy).toContain("object-src 'none'");
    // Enforced: an injected inline script does not run and is reported.
    const ran = await page.evaluate(async () => {
      const s = document.createElement('script');
      s.textContent = '(window as any).__inlineRan = 1'.replace(' as any', '');
      document.head.append(s);
      await new Promise((r) => setTimeout(r, 100));
      return (window as unknown as { __inlineRan?: number }).__inlineRan ?? 0;
    });
    expect(ran).toBe(0);
    expect((await csp.events()).some((v) => v.startsWith('script-src'))).toBe(true);
    await page.evaluate(() => ((window as unknown as { __csp: string[] }).__csp.length = 0));
    csp.console.length = 0;

    await addFiles(page, [kermanyImage('NORMAL', 0)]);
    await waitForClassification(page);
    await expect(page.getByTestId(`runtime-${ID}`).getByTestId('runtime-backend')).toHaveText('wasm');
    await addFiles(page, [path.join(DICOM_DIR, 'nih_cxr14_dx_1024.dcm')]);
    await expect(page.getByTestId('dicom-info')).toBeVisible();

    const hasGpu = await page.evaluate(async () => !!(await (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter()));
    expect(hasGpu, 'this Chromium has a WebGPU adapter (SwiftShader)').toBe(true);
    await page.getByTestId('backend-select').selectOption('webgpu');
    await addFiles(page, [kermanyImage('PNEUMONIA', 1)]);
    await waitForClassification(page, 110_000);
    await expect(page.getByTestId(`runtime-${ID}`).getByTestId('runtime-backend')).toHaveText('webgpu', { timeout: 110_000 });

    // A user-added https source (a Hugging Face-style repository) is reachable under connect-src.
    await page.route('https://hf.example.test/**', async (route) => {
      const m = /^\/cxr\/models\/resolve\/main\/(.+)$/.exec(new URL(route.request().url()).pathname);
      const file = m && path.join(MODELS, decodeURIComponent(m[1]));
      if (!file || !file.startsWith(MODELS) || !fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found', headers: { 'Access-Control-Allow-Origin': '*' } });
      await route.fulfill({ status: 200, body: fs.readFileSync(file), headers: { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'application/octet-stream' } });
    });
    await page.getByRole('button', { name: 'Models' }).click();
    await page.getByLabel('Hugging Face-style repository URL').fill('https://hf.example.test/cxr/models');
    await page.getByRole('button', { name: 'Use repository' }).click();
    await expect(page.getByTestId(`model-row-${ID}`)).toBeVisible();
    await page.getByTestId(`download-${ID}`).click();
    await expect(page.getByTestId(`model-state-${ID}`)).toHaveText(/^downloaded \(/);

    expect(await csp.events()).toEqual([]);
    expect(csp.console).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('model menus name a random-weights fixture once (issue 18.9)', async ({ page }) => {
    await openApp(page);
    for (const select of ['classifier-select', 'clip-select']) {
      // the menus fill when the manifest has loaded (openApp does not wait for it)
      await expect(page.getByTestId(select).locator('option').first()).toBeAttached();
      const options = await page.getByTestId(select).locator('option').allInnerTexts();
      expect(options.length, select).toBeGreaterThan(0);
      for (const o of options) expect((o.match(/random weights/gi) ?? []).length, o).toBeLessThanOrEqual(1);
    }
    const fixture = readManifest()!.models.find((m) => m.id === ID)!;
    if (fixture.weights === 'random-fixture') {
      await expect(page.getByTestId('classifier-select').locator(`option[value="${ID}"]`)).toHaveText(/random weights/);
      expect(await page.getByTestId('classifier-select').locator(`option[value="${ID}"]`).innerText()).not.toMatch(/random weights.*random weights/);
    }
  });

  test('leaving the page while a batch runs asks first; with nothing running it closes at once', async ({ page }) => {
    needsSharedData();
    await openApp(page, { backend: 'wasm', classifier: ID });
    await startLongBatch(page);
    const dialog = page.waitForEvent('dialog');
    await page.close({ runBeforeUnload: true });
    const d = await dialog;
    expect(d.type()).toBe('beforeunload');
    await d.dismiss(); // "Stay on page"
    expect(page.isClosed()).toBe(false);
    expect(await page.evaluate(() => (window as any).cxrStudio.store.getState().batch.running)).toBe(true);
    await stopBatch(page);
    let asked = false;
    page.on('dialog', (x) => {
      asked = true;
      void x.accept();
    });
    const closed = page.waitForEvent('close');
    await page.close({ runBeforeUnload: true });
    await closed;
    expect(asked).toBe(false);
  });
});

test.describe('service worker update', () => {
  test.use({ serviceWorkers: 'allow' });
  needsModel(ID);

  test('a new version waits and shows "Update available — reload", which asks while a batch runs and never reloads by itself', async ({ page }) => {
    needsSharedData();
    test.setTimeout(240_000);
    const swFile = path.join(DIST, 'sw.js');
    const original = fs.readFileSync(swFile, 'utf8');
    try {
      await openApp(page, { backend: 'wasm', classifier: ID });
      await page.evaluate(async () => {
        await navigator.serviceWorker.ready;
        if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
      });
      await expect(page.getByTestId('update-banner')).toHaveCount(0);
      await page.evaluate(() => ((window as unknown as { __samePage: number }).__samePage = 1));
      await startLongBatch(page);
      // A new version is deployed.
      fs.writeFileSync(swFile, `${original}\n// update test ${Date.now()}\n`);
      await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.update());
      await expect(page.getByTestId('update-banner')).toBeVisible({ timeout: 60_000 });
      await expect(page.getByTestId('update-reload')).toHaveText('Update available — reload');
      // It waits: the page was not reloaded, the batch still runs, the new worker is installed but not active.
      expect(await page.evaluate(async () => !!(await navigator.serviceWorker.getRegistration())!.waiting)).toBe(true);
      expect(await page.evaluate(() => (window as unknown as { __samePage?: number }).__samePage)).toBe(1);
      // Reload while the batch runs: asked first; "Cancel" keeps everything.
      const seen: { type: string; message: string }[] = [];
      page.once('dialog', (d) => {
        seen.push({ type: d.type(), message: d.message() });
        void d.dismiss();
      });
      await page.getByTestId('update-reload').click();
      await expect.poll(() => seen.length).toBe(1);
      expect(seen[0].type).toBe('confirm');
      expect(seen[0].message).toContain('A batch run is running');
      await page.waitForTimeout(1000);
      expect(await page.evaluate(() => (window as unknown as { __samePage?: number }).__samePage)).toBe(1);
      expect(await page.evaluate(() => (window as any).cxrStudio.store.getState().batch.running)).toBe(true);
      // Nothing running: the reload goes ahead without a question, onto the new version.
      await stopBatch(page);
      let asked = false;
      page.on('dialog', (x) => {
        asked = true;
        void x.dismiss();
      });
      const navigated = page.waitForEvent('framenavigated');
      await page.getByTestId('update-reload').click();
      await navigated;
      await expect(page.getByTestId('dropzone')).toBeVisible();
      expect(asked).toBe(false);
      expect(await page.evaluate(() => (window as unknown as { __samePage?: number }).__samePage ?? 0)).toBe(0);
      expect(await page.evaluate(async () => !(await navigator.serviceWorker.getRegistration())!.waiting)).toBe(true);
    } finally {
      fs.writeFileSync(swFile, original);
    }
  });
});
