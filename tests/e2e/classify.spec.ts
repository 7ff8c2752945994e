import fs from 'node:fs';
import path from 'node:path';
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
  needsSharedFile,
  SHARED,
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
    // The model was downloaded on first use; once done its bar leaves the Viewer (no 'Ready: ... 100%' left behind).
    await expect(page.getByTestId('download-progress')).toHaveCount(0);
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

test.describe('results keyed by image, frame, model and variant', () => {
  test('frame and model changed while the runs are in flight: only results for what is shown, equal to a calm run', async ({ page }) => {
    test.setTimeout(240_000);
    const dcm = path.join(SHARED, 'data/dicom-codecs/files/CT0012.fragmented_no_bot_jpeg_baseline.51.dcm');
    needsSharedFile(dcm);
    needsModel(CLASSIFIER_ID);
    const small = smallClassifierId();
    needsModel(small);
    const errors = watchErrors(page);
    await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
    type Item = { id: string; frame: number; cls?: { key?: string; modelId: string; probabilities: number[] }; zs?: { key?: string; modelId: string; probabilities: Record<string, number> }; busy: boolean };
    const items = () =>
      page.evaluate(() => {
        const s = (window as any).cxrStudio.store.getState();
        return s.images.map((i: any) => ({
          id: i.id,
          frame: i.dicom?.frameIndex ?? 0,
          cls: i.classification && { key: i.classification.key, modelId: i.classification.modelId, probabilities: i.classification.probabilities },
          zs: i.zeroShot && { key: i.zeroShot.key, modelId: i.zeroShot.modelId, probabilities: i.zeroShot.probabilities },
          busy: !!i.classifying || !!i.zeroShotRunning,
        })) as Item[];
      });
    await addFiles(page, [dcm]);
    await expect.poll(async () => (await items()).length).toBe(1);
    // While the first frame's classification runs: frame 2, then another classifier, then frame 1 and frame 2 again.
    await page.evaluate((small) => {
      const s = (window as any).cxrStudio.store.getState();
      void s.selectFrame(s.currentId, 1);
      void s.chooseModel('classifier', small);
    }, small);
    await page.getByTestId('frame-picker').selectOption('0');
    await page.getByTestId('frame-picker').selectOption('1');
    await expect.poll(async () => { const [i] = await items(); return !i.busy && i.frame === 1 && i.cls?.modelId === small && !!i.zs; }, { timeout: 180_000 }).toBe(true);
    const [raced] = await items();
    const clip = await page.evaluate(() => (window as any).cxrStudio.store.getState().chosenModelId.clip);
    expect(raced.cls!.key).toBe(`${raced.id}|frame 1|${small}|auto`);
    expect(raced.zs!.key).toBe(`${raced.id}|frame 1|${clip}|auto`);
    // The panel shows the chosen model's result for frame 2, named as the model that made it.
    await expect(page.getByTestId('classification-result')).toBeVisible();
    const smallName = await page.evaluate((id) => (window as any).cxrStudio.store.getState().manifest.models.find((m: any) => m.id === id).name, small);
    await expect(page.getByTestId('classification-result')).toContainText(smallName);

    // A calm run of the same frame and model on a second copy of the file gives the very same numbers.
    await addFiles(page, [dcm]);
    await expect.poll(async () => (await items()).length).toBe(2);
    await expect.poll(async () => { const i = (await items())[1]; return !i.busy && !!i.cls && !!i.zs; }, { timeout: 120_000 }).toBe(true);
    const calmFrame1 = (await items())[1];
    await page.getByTestId('frame-picker').selectOption('1');
    await expect.poll(async () => { const i = (await items())[1]; return !i.busy && i.frame === 1 && i.cls?.key?.includes('|frame 1|') && i.zs?.key?.includes('|frame 1|'); }, { timeout: 120_000 }).toBe(true);
    const calm = (await items())[1];
    expect(raced.cls!.probabilities).toEqual(calm.cls!.probabilities);
    expect(raced.zs!.probabilities).toEqual(calm.zs!.probabilities);
    // and frame 1 gave other numbers than frame 2 (so the comparison above can fail)
    expect(calmFrame1.frame).toBe(0);
    expect(calmFrame1.cls!.probabilities).not.toEqual(calm.cls!.probabilities);
    expect(errors).toEqual([]);
  });

  test('similar file names stay told apart in the image list', async ({ page }) => {
    needsModel(smallClassifierId());
    await openApp(page, { backend: 'wasm', classifier: smallClassifierId() });
    const buf = fs.readFileSync(kermanyImage('NORMAL', 0));
    const a = 'patient_0001_chest_xray_posteroanterior_study_A.jpeg';
    const b = 'patient_0001_chest_xray_posteroanterior_study_B.jpeg';
    await addFiles(page, [{ name: a, mimeType: 'image/jpeg', buffer: buf }, { name: b, mimeType: 'image/jpeg', buffer: buf }]);
    const names = page.getByRole('list', { name: 'Opened images' }).getByTestId('file-name');
    await expect(names).toHaveCount(2);
    // What is visible of each: the tail that tells them apart is never cut.
    const tails = await names.locator('.file-name-tail').allInnerTexts();
    expect(tails[0]).not.toBe(tails[1]);
    for (const [k, t] of tails.entries()) {
      expect([a, b][k].endsWith(t)).toBe(true);
      const box = await names.nth(k).locator('.file-name-tail').boundingBox();
      const list = await page.getByRole('list', { name: 'Opened images' }).boundingBox();
      expect(box!.x + box!.width).toBeLessThanOrEqual(list!.x + list!.width + 1);
    }
  });
});
