import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { CLASSIFIER_ID, KERMANY, manifestHas, openApp, REPO, watchErrors, needs, needsSharedData, needsModel } from './helpers';

/**
 * Browser vs PyTorch: the goldens (written by export-scripts from PyTorch fp32 on PIL-decoded images) against the
 * app's real path — folder pick → imaging worker (browser JPEG decoder) → classifier worker (preprocessing + ORT WASM).
 */
const GOLDENS = process.env.CXR_E2E_GOLDENS ?? path.join(REPO, 'tests/goldens', CLASSIFIER_ID, 'test-images.json');
const TOL = 1e-4;

interface Golden {
  path: string;
  label: string;
  probabilities: number[];
}

test('classifier probabilities in the browser match PyTorch within 1e-4', async ({ page }, info) => {
  needs(fs.existsSync(GOLDENS), path.relative(REPO, GOLDENS));
  needsModel(CLASSIFIER_ID);
  needsSharedData();
  test.setTimeout(240_000);
  const doc = JSON.parse(fs.readFileSync(GOLDENS, 'utf8')) as { labels: string[]; images: Golden[] } | Golden[];
  const images = Array.isArray(doc) ? doc : doc.images;
  const labels = Array.isArray(doc) ? ['NORMAL', 'PNEUMONIA'] : doc.labels;
  expect(images.length).toBeGreaterThanOrEqual(32);
  const pos = labels.indexOf('PNEUMONIA');

  // The golden images, as a picked folder (OS temp dir, never the repo); names keep their split/label path.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-parity-'));
  for (const g of images) {
    const dst = path.join(root, 'goldens', g.path);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(path.join(KERMANY, g.path), dst);
  }
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
  await page.getByRole('button', { name: 'Batch' }).click();
  await page.getByTestId('batch-folder-input').setInputFiles(path.join(root, 'goldens'));
  await expect(page.getByTestId('batch-progress-text')).toContainText(`${images.length} / ${images.length} processed`, { timeout: 200_000 });
  await expect(page.getByTestId('batch-progress-text')).toContainText('finished');
  const rows = await page.evaluate(() =>
    (window as unknown as { cxrStudio: { store: { getState(): { batch: { rows: { imageId: string; classifierProbability?: number; error?: string }[] } } } } }).cxrStudio.store
      .getState()
      .batch.rows.map((r) => ({ imageId: r.imageId, p: r.classifierProbability, error: r.error })),
  );
  fs.rmSync(root, { recursive: true, force: true });
  let maxDiff = 0;
  let worst = '';
  for (const g of images) {
    const row = rows.find((r) => r.imageId === `goldens/${g.path}`);
    expect(row, `no result for ${g.path}`).toBeTruthy();
    expect(row!.error).toBeUndefined();
    const d = Math.abs(row!.p! - g.probabilities[pos]);
    if (d > maxDiff) {
      maxDiff = d;
      worst = g.path;
    }
  }
  info.annotations.push({ type: 'parity', description: `max |p_browser − p_torch| = ${maxDiff.toExponential(2)} (${worst}) over ${images.length} images` });
  console.log(`[parity] max |p_browser - p_torch| = ${maxDiff.toExponential(2)} at ${worst} over ${images.length} images`);
  expect(maxDiff).toBeLessThanOrEqual(TOL);
  expect(errors).toEqual([]);
});
