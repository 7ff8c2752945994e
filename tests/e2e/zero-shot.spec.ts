import { expect, test } from '@playwright/test';
import { addFiles, CLIP_ID, hasSharedData, kermanyImage, manifestHas, openApp, readManifest, shot, watchErrors, needsSharedData, needsModel } from './helpers';

test('zero-shot labels with editable prompts; random CLIP weights are said plainly', async ({ page }) => {
  needsSharedData();
  needsModel(CLIP_ID);
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm' });
  await page.getByTestId('clip-select').selectOption(CLIP_ID);
  await addFiles(page, [kermanyImage('PNEUMONIA', 5)]);
  const result = page.getByTestId('zero-shot-result');
  await expect(result).toBeVisible({ timeout: 90_000 });
  await expect(page.getByTestId('auto-label')).toHaveText(/NORMAL|PNEUMONIA/);
  if (readManifest()!.models.find((m) => m.id === CLIP_ID)!.weights === 'random-fixture') {
    await expect(result.getByTestId('weights-badge')).toContainText('RANDOM WEIGHTS — not a diagnosis');
    await expect(page.getByTestId('zero-shot-random-note')).toContainText('random weights');
  }
  // Edit the prompt sets: add a third label and re-run; its probability appears.
  await page.getByTestId('zero-shot').locator('summary').click();
  await page.getByRole('button', { name: 'Add label' }).click();
  await page.getByLabel('Label 3').fill('EFFUSION');
  await page.getByLabel('Prompts for EFFUSION, one per line').fill('a chest x-ray showing a pleural effusion');
  await page.getByRole('button', { name: 'Re-run' }).click();
  await expect(result).toContainText('EFFUSION');
  const sum = await result.locator('td.num').allInnerTexts();
  expect(sum.map(Number).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
  await shot(page, 'zero-shot');
  expect(errors).toEqual([]);
});
