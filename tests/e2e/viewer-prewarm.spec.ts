import { expect, test, type Page } from '@playwright/test';
import { addFiles, CLASSIFIER_ID, kermanyImage, needsModel, needsSharedData, readManifest, watchErrors } from './helpers';

/**
 * A returning visit (issue 21.1, Viewer): with the default classifier in the model cache, the idle prewarm creates its
 * session and runs it once on a grey image (ORT's first run and the worker's cold code paid before any drop,
 * app/store/models.ts) without listing an image or a result; the drop then only decodes and classifies (the model is
 * never 'loading' again), with the very probabilities and heatmap of the first visit's cold run.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const state = (page: Page) => page.evaluate(() => (window as any).cxrStudio.store.getState() as any);

async function classification(page: Page) {
  await expect(page.getByTestId('classification-result')).toBeVisible({ timeout: 240_000 });
  const s = await state(page);
  const c = s.images.find((i: { id: string }) => i.id === s.currentId).classification;
  return { values: [...c.probabilities, ...c.heatmap.data] as number[], modelId: c.modelId as string };
}

test('returning visit: the idle prewarm warms the default classifier without a result; the drop then classifies as the cold first visit did', async ({ page }) => {
  test.setTimeout(480_000);
  needsSharedData();
  needsModel(CLASSIFIER_ID);
  const defaultClassifier = readManifest()!.models.find((m) => m.family === 'classifier' && m.id === CLASSIFIER_ID);
  expect(defaultClassifier, `${CLASSIFIER_ID} in the manifest`).toBeTruthy();
  const errors = watchErrors(page);
  const image = kermanyImage('PNEUMONIA', 1);

  // First visit: nothing cached, so nothing is prewarmed; the drop downloads the default classifier.
  await page.goto('/');
  await expect(page.getByTestId('dropzone')).toBeVisible();
  expect((await state(page)).chosenModelId.classifier).toBe(CLASSIFIER_ID);
  await addFiles(page, [image]);
  const cold = await classification(page);
  expect(cold.modelId).toBe(CLASSIFIER_ID);

  // Returning visit: the prewarm's session and warm-up run, with no image and no result in the store.
  await page.reload();
  await expect(page.getByTestId('dropzone')).toBeVisible();
  await page.waitForFunction(
    (id) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const s = (window as any).cxrStudio.store.getState();
      return s.models[id]?.status === 'ready' && s.models[id].report?.lastInferenceMs > 0 && !s.prewarming;
    },
    CLASSIFIER_ID,
    { timeout: 240_000, polling: 250 },
  );
  const before = await state(page);
  expect(before.images).toEqual([]);
  await expect(page.getByTestId('classification-result')).toHaveCount(0);

  // The drop: the model stays 'ready' throughout (no download, no session creation), same values as the cold run.
  await page.evaluate((id) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const w = window as any;
    w.__statuses = [];
    w.cxrStudio.store.subscribe((s: { models: Record<string, { status: string }> }) => w.__statuses.push(s.models[id]?.status));
  }, CLASSIFIER_ID);
  await addFiles(page, [image]);
  const warm = await classification(page);
  const statuses = (await page.evaluate(() => (window as unknown as { __statuses: string[] }).__statuses)) as string[];
  expect(statuses.length).toBeGreaterThan(0);
  expect(statuses.filter((x) => x !== 'ready')).toEqual([]);
  expect(warm.values).toHaveLength(cold.values.length);
  const d = Math.max(...warm.values.map((v, k) => Math.abs(v - cold.values[k])));
  console.log(`[prewarm] ${CLASSIFIER_ID}: prewarmed session vs the first visit's: max |diff| over ${warm.values.length} probabilities + heatmap values = ${d.toExponential(1)}`);
  expect(d).toBeLessThanOrEqual(1e-6);
  expect(errors).toEqual([]);
});
