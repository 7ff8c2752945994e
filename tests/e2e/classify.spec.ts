import { expect, test } from '@playwright/test';
import {
  addFiles,
  CLASSIFIER_ID,
  hasSharedData,
  kermanyImage,
  logTiming,
  manifestHas,
  openApp,
  readManifest,
  shot,
  smallClassifierId,
  waitForClassification,
  watchErrors,
  APP_HOST,
  needsSharedData,
  needsModel,
} from './helpers';

test.describe('classification of a real X-ray', () => {
  needsSharedData();

  test('on WASM with the trained classifier', async ({ page }, info) => {
    needsModel(CLASSIFIER_ID);
    const errors = watchErrors(page);
    const foreign: string[] = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.host !== APP_HOST && !['data:', 'blob:'].includes(u.protocol)) foreign.push(r.url());
    });
    const t0 = Date.now();
    await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
    logTiming(info, 'app load', Date.now() - t0);
    const t1 = Date.now();
    await addFiles(page, [kermanyImage('PNEUMONIA', 0)]);
    const r = await waitForClassification(page);
    logTiming(info, 'file → result (download + session + inference)', Date.now() - t1);
    expect(['NORMAL', 'PNEUMONIA']).toContain(r.label);
    expect(r.confidence).toMatch(/^\d+(\.\d)?%$/);
    const runtime = page.getByTestId(`runtime-${CLASSIFIER_ID}`);
    await expect(runtime.getByTestId('runtime-backend')).toHaveText('wasm');
    await expect(runtime.getByTestId('runtime-dtype')).toHaveText(/fp32|int8/);
    await expect(page.getByTestId('weights-badge').first()).toBeVisible();
    logTiming(info, 'session creation (wasm)', await runtime.getByTestId('runtime-session-ms').innerText());
    logTiming(info, 'inference (wasm), first run', await runtime.getByTestId('runtime-inference-ms').innerText());
    await addFiles(page, [kermanyImage('NORMAL', 7)]);
    await expect(page.getByRole('list', { name: 'Opened images' }).getByRole('listitem')).toHaveCount(2);
    await waitForClassification(page);
    await expect(page.getByRole('list', { name: 'Opened images' }).locator('.tag')).toHaveCount(2);
    logTiming(info, 'inference (wasm), warm', await runtime.getByTestId('runtime-inference-ms').innerText());
    await shot(page, 'classify-wasm');
    // Everything (app, ORT's wasm, the model) came from the app's own origin: no CDN.
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('on WebGPU (SwiftShader) with the tiny fixture classifier', async ({ page }, info) => {
    const FIXTURE = smallClassifierId();
    needsModel(FIXTURE);
    const errors = watchErrors(page);
    await openApp(page, { backend: 'webgpu', classifier: FIXTURE });
    const hasGpu = await page.evaluate(async () => !!(await (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter()));
    test.skip(!hasGpu, 'this Chromium has no WebGPU adapter (needs --enable-unsafe-webgpu)');
    const t1 = Date.now();
    await addFiles(page, [kermanyImage('NORMAL', 0)]);
    await waitForClassification(page, 110_000);
    logTiming(info, 'file → result on WebGPU/SwiftShader', Date.now() - t1);
    const runtime = page.getByTestId(`runtime-${FIXTURE}`);
    await expect(runtime.getByTestId('runtime-backend')).toHaveText('webgpu');
    await expect(runtime.getByTestId('runtime-adapter')).toContainText('swiftshader');
    // Random fixtures must say so next to the result.
    if (readManifest()!.models.find((m) => m.id === FIXTURE)!.weights === 'random-fixture') {
      await expect(page.getByTestId('classification-result').getByTestId('weights-badge')).toContainText('RANDOM WEIGHTS');
    }
    logTiming(info, 'session creation (webgpu)', await runtime.getByTestId('runtime-session-ms').innerText());
    logTiming(info, 'inference (webgpu), first run incl. shader compilation', await runtime.getByTestId('runtime-inference-ms').innerText());
    await addFiles(page, [kermanyImage('PNEUMONIA', 7)]);
    await expect(page.getByRole('list', { name: 'Opened images' }).locator('.tag')).toHaveCount(2, { timeout: 110_000 });
    logTiming(info, 'inference (webgpu), warm', await runtime.getByTestId('runtime-inference-ms').innerText());
    await shot(page, 'classify-webgpu-swiftshader');
    // Switching the backend re-creates the session on the new provider; the setting survives a reload.
    await page.getByTestId('backend-select').selectOption('wasm');
    await expect(runtime.getByTestId('runtime-backend')).toHaveText('wasm');
    await page.reload();
    await expect(page.getByTestId('backend-select')).toHaveValue('wasm');
    expect(errors).toEqual([]);
  });
});
