import { expect, test, type Page } from '@playwright/test';
import { addFiles, DICOM_DIR, hasSharedData, kermanyImage, manifestHas, openApp, readManifest, shot, smallClassifierId, waitForClassification, watchErrors, needsSharedData, needsModel } from './helpers';

// The smallest classifier keeps downloads quick; the flows are the same for every model.
const FIXTURE_CLASSIFIER_ID = smallClassifierId();
import path from 'node:path';
import { createHash } from 'node:crypto';

/** Requests for files of one model (not the manifest). */
function countModelRequests(page: Page, modelId: string): { n: number } {
  const c = { n: 0 };
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.includes(`/models/${modelId}/`)) c.n++;
  });
  return c;
}

test.describe('model manager', () => {
  needsModel(FIXTURE_CLASSIFIER_ID);

  test('download with progress, reuse after reload without re-download, delete', async ({ page }) => {
    needsSharedData();
    const errors = watchErrors(page);
    const entry = readManifest()!.models.find((m) => m.id === FIXTURE_CLASSIFIER_ID)!;
    const nFiles = Object.values(entry.variants)[0].files.length;
    const requests = countModelRequests(page, FIXTURE_CLASSIFIER_ID);
    await openApp(page, { backend: 'wasm' });
    await page.getByRole('button', { name: 'Models' }).click();
    const row = page.getByTestId(`model-row-${FIXTURE_CLASSIFIER_ID}`);
    await expect(row).toContainText('RANDOM WEIGHTS — not a diagnosis');
    await expect(page.getByTestId(`model-state-${FIXTURE_CLASSIFIER_ID}`)).toHaveText('not downloaded');
    // Trained models show their card's measured metrics at a glance: a classifier's and a CLIP model's accuracy, a segmenter's Dice, a
    // generator's fraction called PNEUMONIA (the headline key of its family, with the card's own value).
    const headline: Record<string, string> = { classifier: 'accuracy', clip: 'accuracy', sam: 'box_right_lung_dice_mean', sd: 'lcm4_lora_frac_pneumonia' };
    for (const m of readManifest()!.models.filter((x) => x.weights === 'trained')) {
      const key = headline[m.family];
      expect(key, `a headline metric for family ${m.family}`).toBeTruthy();
      const value = (m as unknown as { card: { metrics: Record<string, number> } }).card.metrics[key];
      await expect(page.getByTestId(`card-metrics-${m.id}`)).toContainText(`${key} ${value.toFixed(3)}`);
    }
    await page.getByTestId(`download-${FIXTURE_CLASSIFIER_ID}`).click();
    const progress = page.getByTestId('download-progress');
    await expect(progress.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100');
    await expect(page.getByTestId('download-text')).toContainText('100%');
    await expect(page.getByTestId(`model-state-${FIXTURE_CLASSIFIER_ID}`)).toContainText('downloaded (fp32');
    await expect(page.getByTestId('cached-files')).toContainText(FIXTURE_CLASSIFIER_ID);
    await expect(page.getByTestId('quota')).toContainText('quota');
    expect(requests.n).toBe(nFiles);
    await shot(page, 'model-manager');

    // Reload: the cache answers, nothing is fetched again, and the model runs from it.
    requests.n = 0;
    await page.reload();
    await page.getByRole('button', { name: 'Models' }).click();
    await expect(page.getByTestId(`model-state-${FIXTURE_CLASSIFIER_ID}`)).toHaveText(/^downloaded \(/);
    await page.getByRole('button', { name: 'Viewer' }).click();
    await page.getByTestId('classifier-select').selectOption(FIXTURE_CLASSIFIER_ID);
    await addFiles(page, [kermanyImage('NORMAL', 2)]);
    await waitForClassification(page);
    expect(requests.n).toBe(0);

    // Delete.
    await page.getByRole('button', { name: 'Models' }).click();
    await page.getByTestId(`delete-${FIXTURE_CLASSIFIER_ID}`).click();
    await expect(page.getByTestId(`model-state-${FIXTURE_CLASSIFIER_ID}`)).toHaveText('not downloaded');
    await expect(page.getByTestId('cached-files').filter({ hasText: `${FIXTURE_CLASSIFIER_ID}/` })).toHaveCount(0);
    expect(errors).toEqual([]);
  });

  test('a source whose file does not match its sha256 is rejected with a clear message; the app keeps working', async ({ page }) => {
    const errors = watchErrors(page);
    const manifest = readManifest()!;
    const tampered = structuredClone(manifest);
    const file = Object.values(tampered.models.find((m) => m.id === FIXTURE_CLASSIFIER_ID)!.variants)[0].files[0];
    file.sha256 = file.sha256.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    await page.route('**/models/manifest.json', (route) => route.fulfill({ json: tampered, headers: { 'Cross-Origin-Resource-Policy': 'same-origin' } }));
    await openApp(page, { backend: 'wasm' });
    await page.getByRole('button', { name: 'Models' }).click();
    await page.getByTestId(`download-${FIXTURE_CLASSIFIER_ID}`).click();
    await expect(page.getByRole('alert')).toContainText(/failed its integrity check/);
    await expect(page.getByTestId('download-progress')).toContainText('Failed');
    await expect(page.getByTestId(`model-state-${FIXTURE_CLASSIFIER_ID}`)).toHaveText('not downloaded');
    await shot(page, 'model-hash-mismatch');
    // Still working: an image opens.
    await page.getByRole('button', { name: 'Viewer' }).click();
    await addFiles(page, [path.join(DICOM_DIR, 'nih_cxr14_dx_1024.dcm')]);
    await expect(page.getByTestId('dicom-info')).toBeVisible();
    expect(errors).toEqual([]);
  });

  test('a missing model file gives a clear message', async ({ page }) => {
    const manifest = readManifest()!;
    const broken = structuredClone(manifest);
    const file = Object.values(broken.models.find((m) => m.id === FIXTURE_CLASSIFIER_ID)!.variants)[0].files[0];
    file.path = file.path.replace(/[^/]+$/, 'does-not-exist.onnx');
    await page.route('**/models/manifest.json', (route) => route.fulfill({ json: broken }));
    // A static host answers 404 (vite preview's SPA fallback would answer index.html instead).
    await page.route('**/does-not-exist.onnx', (route) => route.fulfill({ status: 404, body: 'not found' }));
    await openApp(page, { backend: 'wasm' });
    await page.getByRole('button', { name: 'Models' }).click();
    await page.getByTestId(`download-${FIXTURE_CLASSIFIER_ID}`).click();
    await expect(page.getByRole('alert')).toContainText(/not found/);
  });

  test('a corrupt model (hash matches, bytes are not ONNX) gives a clear message; the app keeps working', async ({ page }) => {
    needsSharedData();
    const errors = watchErrors(page);
    const garbage = Buffer.from('this is not an ONNX graph '.repeat(64));
    const broken = structuredClone(readManifest()!);
    const file = Object.values(broken.models.find((m) => m.id === FIXTURE_CLASSIFIER_ID)!.variants)[0].files[0];
    file.bytes = garbage.length;
    file.sha256 = createHash('sha256').update(garbage).digest('hex');
    await page.route('**/models/manifest.json', (route) => route.fulfill({ json: broken }));
    await page.route(`**/models/${file.path}`, (route) => route.fulfill({ body: garbage, contentType: 'application/octet-stream' }));
    await openApp(page, { backend: 'wasm', classifier: FIXTURE_CLASSIFIER_ID });
    await addFiles(page, [kermanyImage('NORMAL', 6)]);
    await expect(page.getByRole('alert')).toContainText(/Could not load .*:/, { timeout: 60_000 });
    await expect(page.getByTestId(`runtime-${FIXTURE_CLASSIFIER_ID}`)).toContainText('Could not load');
    // The image is still on screen and a DICOM still opens.
    await expect(page.getByRole('list', { name: 'Opened images' }).getByRole('listitem')).toHaveCount(1);
    await addFiles(page, [path.join(DICOM_DIR, 'nih_cxr14_dx_1024.dcm')]);
    await expect(page.getByTestId('dicom-info')).toBeVisible();
    await shot(page, 'model-corrupt');
    expect(errors).toEqual([]);
  });
});
