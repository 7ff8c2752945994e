import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { addFiles, CLASSIFIER_ID, KERMANY, needsModel, needsSharedFile, openApp, SHARED, shot, waitForClassification, watchErrors } from './helpers';

/**
 * The out-of-distribution badge and the second heatmap method in the real app (pneumonia-vit, WASM). The images and
 * their expected verdicts come from tests/goldens/pneumonia-vit/ood-images.json (scores by the Python fit).
 */
const ADULT = path.join(SHARED, 'data/cxr-lung-masks/images/00870a9c.jpg'); // golden score 75.6, threshold 34.9
const PEDIATRIC = path.join(KERMANY, 'test/PNEUMONIA/person99_bacteria_473.jpeg'); // golden score 22.6
const BADGE = "outside this model's training data: pediatric chest X-rays from one hospital";

test.describe('out-of-distribution check and heatmap methods', () => {
  test.beforeEach(() => {
    needsModel(CLASSIFIER_ID);
    needsSharedFile(ADULT);
    needsSharedFile(PEDIATRIC);
  });

  test('an adult chest X-ray gets the badge next to its result; a Kermany test image does not', async ({ page }) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
    await addFiles(page, [ADULT]);
    await waitForClassification(page, 120_000);
    await expect(page.getByTestId('ood-badge')).toHaveText(`⚠ ${BADGE}`);
    await expect(page.getByTestId('classification-result')).toContainText('OOD score');
    await shot(page, 'ood-adult');

    await page.reload();
    await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
    await addFiles(page, [PEDIATRIC]);
    await waitForClassification(page, 120_000);
    await expect(page.getByTestId('classification-result')).toContainText('OOD score');
    await expect(page.getByTestId('ood-badge')).toHaveCount(0);
    expect(errors).toEqual([]);
  });

  test('occlusion sensitivity is offered beside attention rollout, with progress, and replaces the overlay', async ({ page }) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
    await addFiles(page, [PEDIATRIC]);
    await waitForClassification(page, 120_000);
    await expect(page.getByTestId('heatmap-caption')).toContainText('Attention rollout');
    await page.getByTestId('heatmap-method').selectOption('occlusion');
    await expect(page.getByTestId('heatmap-caption')).toContainText('Occlusion sensitivity');
    await expect(page.getByTestId('occlusion-done')).toContainText('7×7 patches', { timeout: 120_000 });
    await expect(page.getByTestId('occlusion-done')).toContainText(`${1 + Math.ceil(49 / 8)} runs`); // 1 + 49 squares in batches of 8
    const state = await page.evaluate(() => {
      const s = (window as unknown as { cxrStudio: { store: { getState(): { currentId?: string; occlusion: Record<string, { status: string; heatmap?: { data: Float32Array; method: string } }> } } } }).cxrStudio.store.getState();
      const o = s.occlusion[s.currentId!];
      return { status: o.status, method: o.heatmap?.method, max: Math.max(...Array.from(o.heatmap?.data ?? [])) };
    });
    expect(state).toEqual({ status: 'done', method: 'occlusion', max: 1 });
    await shot(page, 'occlusion-heatmap');
    expect(errors).toEqual([]);
  });

  test('the batch table marks out-of-distribution rows and counts them; the CSV carries ood_score and ood', async ({ page }) => {
    test.setTimeout(240_000);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ood-'));
    const files = [ADULT, path.join(SHARED, 'data/cxr-lung-masks/images/0a7faa2a.jpg'), PEDIATRIC, path.join(KERMANY, 'test/PNEUMONIA/person99_bacteria_474.jpeg')];
    fs.mkdirSync(path.join(root, 'mixed'));
    for (const f of files) fs.copyFileSync(f, path.join(root, 'mixed', path.basename(f)));
    const errors = watchErrors(page);
    await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
    await page.getByRole('button', { name: 'Batch' }).click();
    await page.getByTestId('batch-folder-input').setInputFiles(path.join(root, 'mixed'));
    await expect(page.getByTestId('batch-progress-text')).toContainText('4 / 4 processed', { timeout: 200_000 });
    await expect(page.getByTestId('batch-ood-summary')).toContainText('2 / 4 (50.0%) flagged out of distribution');
    await expect(page.getByTestId('batch-table').locator('.badge-ood')).toHaveCount(2);
    const csv = await page.evaluate(() => (window as unknown as { cxrStudio: { store: { getState(): { batchCsv(): string } } } }).cxrStudio.store.getState().batchCsv());
    const lines = csv.trim().split(/\r?\n/);
    // ood_score and ood, then one zs_<LABEL> column per zero-shot label when a CLIP model ran.
    const header = lines[0].split(',');
    expect(header.slice(6, 8)).toEqual(['ood_score', 'ood']);
    const ood = lines.slice(1).map((l) => l.split(',')[7]);
    expect(ood.filter((v) => v === 'true').length).toBe(2);
    expect(ood.filter((v) => v === 'false').length).toBe(2);
    fs.rmSync(root, { recursive: true, force: true });
    expect(errors).toEqual([]);
  });
});
