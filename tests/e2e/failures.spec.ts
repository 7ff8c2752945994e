/**
 * Every worker call fails once (fault injection in the worker registry, app/platform/browser/workers.ts: the first
 * call of each method rejects as a crashed worker's would). Each failure must reach the alert region, the app must
 * keep working (the next attempt succeeds and earlier results stay), and no promise rejection may go unhandled.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { addFiles, CLIP_ID, kermanyImage, needsModel, needsSharedData, openApp, readManifest, SHARED, smallClassifierId, waitForClassification, watchErrors } from './helpers';

test('each worker call failing once: an alert, the app keeps working, no unhandled rejection', async ({ page }) => {
  needsSharedData();
  const classifier = smallClassifierId();
  needsModel(classifier);
  needsModel(CLIP_ID);
  await page.addInitScript(() => {
    const w = globalThis as unknown as { __CXR_FAULTS__: object; __unhandled: string[] };
    w.__CXR_FAULTS__ = { workerCallsFailOnce: true };
    w.__unhandled = [];
    globalThis.addEventListener('unhandledrejection', (e) => w.__unhandled.push(String((e as PromiseRejectionEvent).reason)));
  });
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm', classifier });
  // The app's default CLIP model: the first trained one (cxr-clip) before a random fixture (defaultModelId in app/lib/models/default-model.ts).
  const clips = readManifest()!.models.filter((m) => m.family === 'clip');
  await expect(page.getByTestId('clip-select')).toHaveValue((clips.find((m) => m.weights !== 'random-fixture') ?? clips[0]).id);
  const alerts = page.getByRole('alert').getByTestId('alert-item');
  const images = page.getByRole('list', { name: 'Opened images' }).getByRole('listitem');
  const alertFor = (call: string) => alerts.filter({ hasText: `injected fault in ${call}` });

  // 1. imaging.decode fails: the file is reported, nothing is added.
  const first = kermanyImage('PNEUMONIA', 2);
  await addFiles(page, [first]);
  await expect(alertFor('imaging.decode')).toHaveCount(1);
  await expect(images).toHaveCount(0);

  // 2. The same file again decodes; the classifier's and CLIP's session creation fail (load), each with an alert.
  await addFiles(page, [first]);
  await expect(images).toHaveCount(1);
  await expect(alertFor('classifier.load')).toHaveCount(1);
  await expect(alertFor('clip.load')).toHaveCount(1);
  await expect(page.getByTestId('classification-result')).toHaveCount(0);

  // 3. The next image: sessions load, the inference calls themselves fail once (classify, zeroShot).
  await addFiles(page, [kermanyImage('NORMAL', 2)]);
  await expect(images).toHaveCount(2);
  await expect(alertFor('classifier.classify')).toHaveCount(1);
  await expect(alertFor('clip.zeroShot')).toHaveCount(1);

  // 4. The app keeps working: a third image gets both results.
  await addFiles(page, [kermanyImage('PNEUMONIA', 3)]);
  await expect(images).toHaveCount(3);
  const r = await waitForClassification(page);
  expect(['NORMAL', 'PNEUMONIA']).toContain(r.label);
  await expect(page.getByTestId('zero-shot-result')).toBeVisible({ timeout: 60_000 });
  // Every busy flag of the failed runs was cleared (guarded actions: a failure never leaves a spinner).
  await expect(page.getByTestId('classifying')).toHaveCount(0);
  await expect(page.getByTestId('zero-shot').getByText('Labelling…')).toHaveCount(0);

  // 4b. The classifier's occlusion run fails once: an alert and the error beside the map; asking again computes it.
  await page.getByTestId('heatmap-method').selectOption('occlusion');
  await expect(alertFor('classifier.occlusion')).toHaveCount(1);
  await page.getByTestId('heatmap-method').selectOption('attention-rollout');
  await page.getByTestId('heatmap-method').selectOption('occlusion');
  await expect(page.getByTestId('occlusion-done')).toBeVisible({ timeout: 90_000 });
  await page.getByTestId('heatmap-method').selectOption('attention-rollout');

  // 4c. A batch whose first decode fails: that row fails with the cause, the others are labelled by both models.
  await page.getByRole('button', { name: 'Batch' }).click();
  await page.getByTestId('batch-file-input').setInputFiles([kermanyImage('NORMAL', 4), kermanyImage('NORMAL', 5), kermanyImage('PNEUMONIA', 4)]);
  await expect(page.getByTestId('batch-progress-text')).toContainText('3 / 3 processed · 1 failed', { timeout: 90_000 });
  await expect(page.getByTestId('batch-table').locator('tr[data-status="error"]')).toContainText('injected fault in imaging.decodeForBatch');
  await expect(page.getByTestId('batch-table').locator('tr[data-status="done"]')).toHaveCount(2);
  await page.getByRole('button', { name: 'Clear' }).click();
  await page.getByRole('button', { name: 'Viewer' }).click();

  // 5. Releasing sessions (backend change) fails once: an alert; the results on screen stay, classifying still works.
  await page.getByTestId('backend-select').selectOption('auto');
  await expect(alerts.filter({ hasText: /injected fault in (classifier|clip)\.reset/ }).first()).toBeVisible();
  await expect(page.getByTestId('predicted-label')).toHaveText(r.label);
  await page.getByTestId('backend-select').selectOption('wasm');
  await addFiles(page, [kermanyImage('NORMAL', 3)]);
  await expect(images).toHaveCount(4);
  await waitForClassification(page);

  const unhandled = await page.evaluate(() => (globalThis as unknown as { __unhandled: string[] }).__unhandled);
  expect(unhandled).toEqual([]);
  expect(errors).toEqual([]);
});

test('segment and generate: each worker call failing once is an alert, never a stuck state or an unhandled rejection', async ({ page }) => {
  test.setTimeout(300_000);
  needsSharedData();
  needsModel('tiny-sam');
  needsModel('tiny-sd');
  await page.addInitScript(() => {
    const w = globalThis as unknown as { __CXR_FAULTS__: object; __unhandled: string[] };
    w.__CXR_FAULTS__ = { workerCallsFailOnce: true };
    w.__unhandled = [];
    globalThis.addEventListener('unhandledrejection', (e) => w.__unhandled.push(String((e as PromiseRejectionEvent).reason)));
  });
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm', classifier: smallClassifierId() });
  const alerts = page.getByRole('alert').getByTestId('alert-item');
  const alertFor = (call: string) => alerts.filter({ hasText: `injected fault in ${call}` });
  const overlay = page.getByTestId('segment-overlay');
  const clickCentre = async () => {
    const b = (await overlay.boundingBox())!;
    await page.mouse.click(b.x + b.width * 0.3, b.y + b.height * 0.5);
  };

  // Segment: load, info, encode and decode fail once each; every retry is a click on the image.
  await page.getByRole('button', { name: 'Segment', exact: true }).click();
  await page.getByTestId('segment-model').selectOption('tiny-sam');
  const img = lungMaskImage(0);
  await addFiles(page, [img]);
  await expect(alertFor('imaging.decode')).toHaveCount(1);
  await addFiles(page, [img]);
  await expect(alertFor('sam.load')).toHaveCount(1);
  await expect(page.getByTestId('segment-error')).toBeVisible();
  await clickCentre();
  await expect(alertFor('sam.info')).toHaveCount(1);
  await clickCentre();
  await expect(alertFor('sam.encode')).toHaveCount(1);
  // a failed encode does not leave the image "encoding"
  await expect(page.getByTestId('segment-embedding')).toContainText('injected fault in sam.encode');
  await clickCentre();
  await expect(alertFor('sam.decode')).toHaveCount(1);
  await expect(page.getByTestId('segment-layer-area').first()).toHaveText('empty');
  await clickCentre();
  await expect(page.getByTestId('segment-layer-area').first()).toContainText('px', { timeout: 60_000 });

  // Generate: the session's load fails, then the generation itself; the third run completes.
  await page.getByRole('button', { name: 'Generate' }).click();
  await page.getByTestId('gen-model').selectOption('tiny-sd');
  await page.getByTestId('gen-steps').fill('2');
  await page.getByTestId('gen-nseeds').fill('1');
  await expect(page.getByTestId('gen-run')).toBeEnabled();
  await page.getByTestId('gen-run').click();
  await expect(alertFor('sd.load')).toHaveCount(1, { timeout: 60_000 });
  await expect(page.getByTestId('gen-error')).toContainText('sd.load');
  await expect(page.getByTestId('gen-run')).toBeEnabled();
  await page.getByTestId('gen-run').click();
  await expect(alertFor('sd.generate')).toHaveCount(1, { timeout: 60_000 });
  await expect(page.getByTestId('gallery-run').first()).toHaveAttribute('data-status', 'error');
  await page.getByTestId('gen-run').click();
  await expect(page.getByTestId('gallery-run').first()).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  await expect(page.getByTestId('gallery-run').first().getByTestId('gallery-image')).toHaveCount(2);

  const unhandled = await page.evaluate(() => (globalThis as unknown as { __unhandled: string[] }).__unhandled);
  expect(unhandled).toEqual([]);
  expect(errors).toEqual([]);
});

/** The i-th image of ../shared's lung-mask set (sorted). */
function lungMaskImage(i: number): string {
  const dir = path.join(SHARED, 'data/cxr-lung-masks/images');
  return path.join(dir, fs.readdirSync(dir).sort()[i]);
}
