/**
 * Every worker call fails once (fault injection in the worker registry, app/platform/browser/workers.ts: the first
 * call of each method rejects as a crashed worker's would). Each failure must reach the alert region, the app must
 * keep working (the next attempt succeeds and earlier results stay), and no promise rejection may go unhandled.
 */
import { expect, test } from '@playwright/test';
import { addFiles, CLIP_ID, kermanyImage, needsModel, needsSharedData, openApp, smallClassifierId, waitForClassification, watchErrors } from './helpers';

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
  await expect(page.getByTestId('clip-select')).toHaveValue(CLIP_ID);
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
