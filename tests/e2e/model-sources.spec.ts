import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { addFiles, hasSharedData, kermanyImage, openApp, REPO, smallClassifierId, manifestHas, waitForClassification, watchErrors, needsSharedData, needsModel } from './helpers';

const MODELS = fs.existsSync(path.join(REPO, 'dist/models/manifest.json')) ? path.join(REPO, 'dist/models') : path.join(REPO, 'public/models');
const ID = smallClassifierId();

test.describe('model sources', () => {
  needsSharedData();
  needsModel(ID);

  test('a Hugging Face-style repository URL (…/resolve/main/…)', async ({ page }) => {
    const errors = watchErrors(page);
    const served: string[] = [];
    // A stand-in for https://huggingface.co/<org>/<repo>: files under resolve/<revision>/, with CORS (the page is
    // cross-origin isolated, so cross-origin responses need CORS or CORP).
    await page.route('https://hf.example.test/**', async (route) => {
      const url = new URL(route.request().url());
      const m = /^\/cxr\/models\/resolve\/main\/(.+)$/.exec(url.pathname);
      const file = m && path.join(MODELS, decodeURIComponent(m[1]));
      if (!file || !file.startsWith(MODELS) || !fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found', headers: { 'Access-Control-Allow-Origin': '*' } });
      served.push(m![1]);
      await route.fulfill({ status: 200, body: fs.readFileSync(file), headers: { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'application/octet-stream' } });
    });
    await openApp(page, { backend: 'wasm' });
    await page.getByRole('button', { name: 'Models' }).click();
    await page.getByLabel('Hugging Face-style repository URL').fill('https://hf.example.test/cxr/models');
    await page.getByRole('button', { name: 'Use repository' }).click();
    await expect(page.getByTestId('model-source')).toContainText('https://hf.example.test/cxr/models (revision main)');
    await expect(page.getByTestId(`model-row-${ID}`)).toBeVisible();
    await page.getByTestId(`download-${ID}`).click();
    await expect(page.getByTestId(`model-state-${ID}`)).toHaveText(/^downloaded \(/);
    expect(served).toContain('manifest.json');
    expect(served.some((f) => f.startsWith(`${ID}/`))).toBe(true);
    await page.getByRole('button', { name: 'Viewer' }).click();
    await page.getByTestId('classifier-select').selectOption(ID);
    await addFiles(page, [kermanyImage('NORMAL', 4)]);
    await waitForClassification(page);
    expect(errors).toEqual([]);
  });

  test('a local folder picked by the user', async ({ page }) => {
    const errors = watchErrors(page);
    await openApp(page, { backend: 'wasm' });
    await page.getByRole('button', { name: 'Models' }).click();
    await page.getByTestId('model-folder-input').setInputFiles(MODELS);
    await expect(page.getByTestId('model-source')).toContainText('local folder');
    await page.getByTestId(`download-${ID}`).click();
    await expect(page.getByTestId(`model-state-${ID}`)).toHaveText(/^downloaded \(/);
    await expect(page.getByTestId('cached-files')).toContainText(`${ID}/`);
    await page.getByRole('button', { name: 'Viewer' }).click();
    await page.getByTestId('classifier-select').selectOption(ID);
    await addFiles(page, [kermanyImage('PNEUMONIA', 4)]);
    await waitForClassification(page);
    expect(errors).toEqual([]);
  });
});
