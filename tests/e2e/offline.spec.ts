import { expect, test } from '@playwright/test';
import { addFiles, CLASSIFIER_ID, FIXTURE_CLASSIFIER_ID, hasSharedData, kermanyImage, manifestHas, readManifest, shot, waitForClassification, watchErrors, needsSharedData, needsModel } from './helpers';

// The service worker (precached app shell incl. ORT's wasm) is the point of this test.
test.use({ serviceWorkers: 'allow' });

test('after one online visit and a model download the app opens and classifies offline', async ({ page, context }) => {
  needsSharedData();
  const id = manifestHas(FIXTURE_CLASSIFIER_ID) ? FIXTURE_CLASSIFIER_ID : CLASSIFIER_ID;
  needsModel(id);
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.getByTestId('dropzone')).toBeVisible();
  // Wait until the service worker has installed (precache complete) and controls the page.
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
  });
  await page.getByTestId('backend-select').selectOption('wasm');
  await page.getByTestId('classifier-select').selectOption(id);
  await addFiles(page, [kermanyImage('PNEUMONIA', 2)]);
  await waitForClassification(page);

  await context.setOffline(true);
  await page.reload();
  await expect(page.getByTestId('dropzone')).toBeVisible();
  expect(await page.evaluate(() => navigator.onLine)).toBe(false);
  await page.getByTestId('classifier-select').selectOption(id);
  await addFiles(page, [kermanyImage('NORMAL', 3)]);
  const r = await waitForClassification(page);
  expect(['NORMAL', 'PNEUMONIA']).toContain(r.label);
  await expect(page.getByTestId(`runtime-${id}`).getByTestId('runtime-backend')).toHaveText('wasm');
  await shot(page, 'offline');
  // The service worker answers model URLs from the app's model cache too (never from its precache).
  const file = Object.values(readManifest()!.models.find((m) => m.id === id)!.variants)[0].files[0];
  const got = await page.evaluate(async (p) => {
    const r = await fetch(`/models/${p}`);
    return { status: r.status, bytes: (await r.arrayBuffer()).byteLength };
  }, file.path);
  expect(got).toEqual({ status: 200, bytes: file.bytes });
  await context.setOffline(false);
  expect(errors).toEqual([]);
});
