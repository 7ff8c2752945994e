import { expect, test } from '@playwright/test';
import { addFiles, CLASSIFIER_ID, kermanyImage, needsModel, needsSharedData, openApp, watchErrors, waitForClassification } from './helpers';

/** The Models view's dtype choice: 'auto' runs int8 on WASM because its card matches fp32; fp32 can be forced. */
test('the Models view says why auto runs int8, and forcing fp32 re-creates the session on fp32', async ({ page }) => {
  needsModel(CLASSIFIER_ID);
  needsSharedData();
  test.setTimeout(180_000);
  const errors = watchErrors(page);
  const dtypeRan = () =>
    page.evaluate(
      (id) => (window as unknown as { cxrStudio: { store: { getState(): { models: Record<string, { report?: { dtype: string } }> } } } }).cxrStudio.store.getState().models[id]?.report?.dtype,
      CLASSIFIER_ID,
    );
  await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
  await addFiles(page, [kermanyImage('NORMAL', 0)]);
  await waitForClassification(page, 120_000);
  expect(await dtypeRan()).toBe('int8');

  await page.getByRole('button', { name: 'Models' }).click();
  await expect(page.getByTestId(`int8-verdict-${CLASSIFIER_ID}`)).toContainText('auto runs int8 on WASM: int8 card metrics within 0.005 of fp32');
  await page.getByTestId(`dtype-select-${CLASSIFIER_ID}`).selectOption('fp32');
  await page.getByRole('button', { name: 'Viewer' }).click();
  await expect.poll(dtypeRan, { timeout: 120_000 }).toBe('fp32');
  await waitForClassification(page, 120_000);

  // the choice is a saved setting: it holds after a reload
  await page.reload();
  await page.getByRole('button', { name: 'Models' }).click();
  await expect(page.getByTestId(`dtype-select-${CLASSIFIER_ID}`)).toHaveValue('fp32');
  expect(errors).toEqual([]);
});
