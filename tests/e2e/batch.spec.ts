import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { zipSync } from 'fflate';
import { CLASSIFIER_ID, FIXTURE_CLASSIFIER_ID, hasSharedData, KERMANY, manifestHas, openApp, shot, watchErrors, needsSharedData, needsModel } from './helpers';

test('batch: folder with ground truth → table, metrics, ROC, similar cases, PCA, CSV export', async ({ page }) => {
  needsSharedData();
  const id = manifestHas(CLASSIFIER_ID) ? CLASSIFIER_ID : FIXTURE_CLASSIFIER_ID;
  needsModel(id);
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm', classifier: id });
  await page.getByRole('button', { name: 'Batch' }).click();
  // A folder with NORMAL/ and PNEUMONIA/ subfolders (12 each), picked through the folder input: the relative paths
  // carry the ground truth. Built in the OS temp dir from the shared data (never inside the repo).
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-batch-'));
  for (const label of ['NORMAL', 'PNEUMONIA']) {
    fs.mkdirSync(path.join(root, 'kermany', label), { recursive: true });
    for (const f of fs.readdirSync(path.join(KERMANY, 'test', label)).sort().slice(0, 12)) {
      fs.copyFileSync(path.join(KERMANY, 'test', label, f), path.join(root, 'kermany', label, f));
    }
  }
  await page.getByTestId('batch-folder-input').setInputFiles(path.join(root, 'kermany'));
  await expect(page.getByTestId('batch-progress-text')).toContainText('24 / 24 processed', { timeout: 120_000 });
  await expect(page.getByTestId('batch-progress-text')).toContainText('finished');
  const table = page.getByTestId('batch-table');
  await expect(table.locator('tbody tr')).toHaveCount(24);
  await expect(table).toContainText('PNEUMONIA');
  await expect(page.getByTestId('confusion-matrix')).toBeVisible();
  await expect(page.getByTestId('roc-svg')).toBeVisible();
  await expect(page.getByTestId('metric-auc')).toHaveText(/^\d\.\d{3}$/);
  // Threshold slider updates the metrics.
  const slider = page.getByLabel('Decision threshold');
  await slider.fill('0');
  await expect(page.getByTestId('threshold-value')).toHaveText('0.00');
  await expect(page.getByTestId('metric-accuracy')).toHaveText('0.500'); // all predicted PNEUMONIA, 12/24 right
  await slider.fill('1');
  await expect(page.getByTestId('metric-accuracy')).toHaveText(/^0\.500$|^0\.5\d\d$/);
  await slider.fill('0.5');
  await table.locator('tbody tr').nth(3).click();
  await expect(page.getByTestId('similar-cases')).toContainText('by classifier embedding');
  // Each similar case is named (file name under its thumbnail), and none is the query image itself.
  const query = (await page.getByTestId('similar-query').innerText()).split('/').pop()!;
  const names = await page.getByTestId('similar-cases').getByTestId('file-name').allInnerTexts();
  expect(names.length).toBeGreaterThanOrEqual(5);
  for (const n of names) expect(n).toMatch(/\.jpe?g$/);
  expect(names).not.toContain(query);
  await expect(page.getByTestId('pca-svg').locator('circle')).toHaveCount(24);
  await shot(page, 'batch');
  const download = page.waitForEvent('download');
  await page.getByTestId('batch-export').click();
  const d = await download;
  expect(d.suggestedFilename()).toBe('labeled_dataset.csv');
  const csv = fs.readFileSync(await d.path(), 'utf8').trim().split(/\r?\n/);
  // The fixed columns, then one zs_<LABEL> column per zero-shot prompt label (the CLIP model's probabilities).
  const header = csv[0].split(',');
  expect(header.slice(0, 8).join(',')).toBe('image_id,auto_label,ground_truth,confidence_score,classifier_prediction,classifier_probability,ood_score,ood');
  const zs = header.slice(8);
  for (const c of zs) expect(c).toMatch(/^zs_\S+$/);
  if (zs.length) {
    for (const line of csv.slice(1)) {
      const cells = line.split(',');
      expect(cells.slice(8).reduce((a, c) => a + Number(c), 0)).toBeCloseTo(1, 4);
      expect(zs).toContain(`zs_${cells[1]}`); // auto_label is one of the prompt labels
    }
  }
  expect(csv).toHaveLength(25);
  expect(csv.filter((l) => l.includes(',NORMAL,') || l.includes(',PNEUMONIA,')).length).toBeGreaterThan(0);
  fs.rmSync(root, { recursive: true, force: true });
  expect(errors).toEqual([]);
});

test('batch: cancel then resume finishes every row', async ({ page }) => {
  needsSharedData();
  const id = manifestHas(FIXTURE_CLASSIFIER_ID) ? FIXTURE_CLASSIFIER_ID : CLASSIFIER_ID;
  needsModel(id);
  await openApp(page, { backend: 'wasm', classifier: id });
  await page.getByRole('button', { name: 'Batch' }).click();
  const dir = path.join(KERMANY, 'test', 'NORMAL');
  const files = fs.readdirSync(dir).sort().slice(0, 40).map((f) => ({ name: f, mimeType: 'image/jpeg', buffer: fs.readFileSync(path.join(dir, f)) }));
  await page.getByTestId('batch-file-input').setInputFiles(files);
  await page.getByTestId('batch-cancel').click();
  await expect(page.getByTestId('batch-progress-text')).toContainText('paused');
  const done = Number((await page.getByTestId('batch-progress-text').innerText()).split(' ')[0]);
  expect(done).toBeLessThan(40);
  await page.getByTestId('batch-resume').click();
  await expect(page.getByTestId('batch-progress-text')).toContainText('40 / 40 processed · ', { timeout: 120_000 });
  await expect(page.getByTestId('batch-progress-text')).toContainText('finished');
});

test('batch: a .zip of images (folders inside give the ground truth)', async ({ page }) => {
  needsSharedData();
  const id = manifestHas(FIXTURE_CLASSIFIER_ID) ? FIXTURE_CLASSIFIER_ID : CLASSIFIER_ID;
  needsModel(id);
  await openApp(page, { backend: 'wasm', classifier: id });
  await page.getByRole('button', { name: 'Batch' }).click();
  const entries: Record<string, Uint8Array> = { 'README.txt': new TextEncoder().encode('not an image') };
  for (const label of ['NORMAL', 'PNEUMONIA']) {
    for (const f of fs.readdirSync(path.join(KERMANY, 'test', label)).sort().slice(20, 23)) {
      entries[`set/${label}/${f}`] = new Uint8Array(fs.readFileSync(path.join(KERMANY, 'test', label, f)));
    }
  }
  await page.getByTestId('batch-file-input').setInputFiles({ name: 'xrays.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(entries)) });
  await expect(page.getByTestId('batch-progress-text')).toContainText('6 / 6 processed', { timeout: 60_000 });
  await expect(page.getByTestId('batch-table').locator('tbody tr')).toHaveCount(6);
  await expect(page.getByTestId('batch-table')).toContainText('set/NORMAL/');
  await expect(page.getByTestId('confusion-matrix')).toBeVisible();
});

test('batch: the page killed mid-batch loses nothing finished; after reopening, the same files resume it', async ({ page, context }) => {
  needsSharedData();
  test.setTimeout(480_000);
  // Enough files that the page dies with most of them still pending: the batch runs in pipelined chunks of 16 and a
  // fast machine labels 40 images before a poll, a read of the table and a close have happened (a CI run did).
  const N = 200;
  const id = manifestHas(CLASSIFIER_ID) ? CLASSIFIER_ID : FIXTURE_CLASSIFIER_ID;
  needsModel(id);
  await openApp(page, { backend: 'wasm', classifier: id });
  await page.getByRole('button', { name: 'Batch' }).click();
  const dir = path.join(KERMANY, 'test', 'PNEUMONIA');
  const files = fs.readdirSync(dir).sort().slice(0, N).map((f) => ({ name: f, mimeType: 'image/jpeg', buffer: fs.readFileSync(path.join(dir, f)) }));
  await page.getByTestId('batch-file-input').setInputFiles(files);
  const progress = page.getByTestId('batch-progress-text');
  await expect.poll(async () => Number((await progress.innerText()).split(' ')[0]), { timeout: 120_000 }).toBeGreaterThanOrEqual(8);
  // What the table shows as finished right now, then the page dies (no unload handlers run, as in a crash).
  const rowsText = async (p: typeof page) =>
    p.getByTestId('batch-table').locator('tbody tr[data-status="done"]').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(1, 7).map((td) => td.textContent?.trim()).join(' | ')));
  const before = await rowsText(page);
  expect(before.length).toBeGreaterThanOrEqual(8);
  await page.close({ runBeforeUnload: false });

  const again = await context.newPage();
  await openApp(again, { backend: 'wasm', classifier: id });
  await again.getByRole('button', { name: 'Batch' }).click();
  await expect(again.getByTestId('batch-resume-offer')).toBeVisible();
  const restored = await rowsText(again);
  expect(restored.length).toBeGreaterThanOrEqual(before.length);
  for (const r of before) expect(restored).toContain(r); // every row seen finished came back, cell for cell
  expect(restored.length).toBeLessThan(N);
  // The same files again: only the rows still pending run.
  await again.getByTestId('batch-file-input').setInputFiles(files);
  await expect(again.getByTestId('batch-progress-text')).toContainText(`${N} / ${N} processed`, { timeout: 300_000 });
  await expect(again.getByTestId('batch-resume-offer')).toHaveCount(0);
  const after = await rowsText(again);
  expect(after).toHaveLength(N);
  for (const r of before) expect(after).toContain(r);
  const download = again.waitForEvent('download');
  await again.getByTestId('batch-export').click();
  const csv = fs.readFileSync(await (await download).path(), 'utf8').trim().split(/\r?\n/);
  expect(csv).toHaveLength(N + 1);
  await again.getByRole('button', { name: 'Clear' }).click();
});

test('batch: switching the classifier while a batch runs fails no row and shows the new model only on its own result', async ({ page }) => {
  needsSharedData();
  const small = manifestHas(FIXTURE_CLASSIFIER_ID) ? FIXTURE_CLASSIFIER_ID : CLASSIFIER_ID;
  needsModel(small);
  needsModel(CLASSIFIER_ID);
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm', classifier: small });
  // An image in the Viewer, so that a classifier change runs the new model right away (taking the family's session).
  await page.getByTestId('file-input').setInputFiles(path.join(KERMANY, 'test', 'NORMAL', fs.readdirSync(path.join(KERMANY, 'test', 'NORMAL')).sort()[0]));
  await expect(page.getByTestId('classification-result')).toBeVisible({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Batch' }).click();
  const dir = path.join(KERMANY, 'test', 'PNEUMONIA');
  const files = fs.readdirSync(dir).sort().slice(40, 72).map((f) => ({ name: f, mimeType: 'image/jpeg', buffer: fs.readFileSync(path.join(dir, f)) }));
  await page.getByTestId('batch-file-input').setInputFiles(files);
  await expect.poll(async () => Number((await page.getByTestId('batch-progress-text').innerText()).split(' ')[0]), { timeout: 60_000 }).toBeGreaterThanOrEqual(8);
  // Mid-batch: the Viewer's classifier changes twice (each change classifies the current image with that model).
  await page.evaluate(([a, b]) => {
    const s = (window as any).cxrStudio.store.getState();
    void s.chooseModel('classifier', a);
    setTimeout(() => void s.chooseModel('classifier', b), 50);
    setTimeout(() => void s.chooseModel('classifier', a), 400);
  }, [CLASSIFIER_ID, small]);
  await expect(page.getByTestId('batch-progress-text')).toContainText('32 / 32 processed · ', { timeout: 180_000 });
  await expect(page.getByTestId('batch-progress-text')).not.toContainText('failed');
  const st = await page.evaluate(() => {
    const s = (window as any).cxrStudio.store.getState();
    return { batchModel: s.batch.classifierId, rows: s.batch.rows.filter((r: any) => r.status === 'done' && Number.isFinite(r.classifierProbability)).length };
  });
  expect(st).toEqual({ batchModel: small, rows: 32 }); // every row by the model the batch started with
  await page.getByRole('button', { name: 'Viewer' }).click();
  await expect.poll(() => page.evaluate(() => { const s = (window as any).cxrStudio.store.getState(); const i = s.images[0]; return !i.classifying && i.classification?.modelId; }), { timeout: 120_000 }).toBe(CLASSIFIER_ID);
  await expect(page.getByTestId('classification-result')).toBeVisible();
  expect(errors).toEqual([]);
});
