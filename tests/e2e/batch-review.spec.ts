/**
 * Issue 8 item 6, the code-review bugs of batch mode and the Models view, in the real browser:
 * an unreadable file fails its own row only; throughput excludes paused time; the CSV export uses one threshold and
 * names it in a sidecar; the manifest's labels drive the table and metrics; "Verify" re-hashes the cached files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { expect, test, type Page } from '@playwright/test';
import { KERMANY, needsModel, needsSharedData, openApp, readManifest, smallClassifierId, watchErrors } from './helpers';

type Batch = { activeMs: number; startedAt?: number; finishedAt?: number; imagesPerSecond?: number; rows: { status: string; error?: string }[] };
const batchState = (page: Page) => page.evaluate(() => (window as never as { cxrStudio: { store: { getState(): { batch: Batch } } } }).cxrStudio.store.getState().batch);

function kermanyFiles(label: string, n: number, from = 0): string[] {
  const dir = path.join(KERMANY, 'test', label);
  return fs.readdirSync(dir).sort().slice(from, from + n).map((f) => path.join(dir, f));
}

/** A temp folder root/<sub>/<files>, copied from the shared data (never inside the repo). */
function tempTree(tree: Record<string, string[]>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-review-'));
  for (const [sub, files] of Object.entries(tree)) {
    fs.mkdirSync(path.join(root, sub), { recursive: true });
    for (const f of files) fs.copyFileSync(f, path.join(root, sub, path.basename(f)));
  }
  return root;
}

test('an unreadable file fails its own row; the batch goes on and finishes', async ({ page }) => {
  needsSharedData();
  const id = smallClassifierId();
  needsModel(id);
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm', classifier: id });
  await page.getByRole('button', { name: 'Batch' }).click();
  const root = tempTree({ x: kermanyFiles('NORMAL', 20) });
  const files = fs.readdirSync(path.join(root, 'x')).sort().map((f) => path.join(root, 'x', f));
  try {
    await page.getByTestId('batch-file-input').setInputFiles(files);
    // Picked, then gone from the disk before its chunk is read (File.arrayBuffer rejects: NotReadableError).
    fs.rmSync(files[17]);
    await expect(page.getByTestId('batch-progress-text')).toContainText('20 / 20 processed · 1 failed', { timeout: 120_000 });
    await expect(page.getByTestId('batch-progress-text')).toContainText('finished');
    const b = await batchState(page);
    expect(b.rows.filter((r) => r.status === 'done')).toHaveLength(19);
    expect(b.rows[17].status).toBe('error');
    expect(b.rows[17].error).toMatch(/^The file could not be read.*(moved, changed or deleted after it was chosen\?)/);
    expect(errors).toEqual([]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('throughput counts running time only: a pause between cancel and resume is excluded', async ({ page }) => {
  needsSharedData();
  const id = smallClassifierId();
  needsModel(id);
  await openApp(page, { backend: 'wasm', classifier: id });
  await page.getByRole('button', { name: 'Batch' }).click();
  await page.getByTestId('batch-file-input').setInputFiles(kermanyFiles('PNEUMONIA', 32));
  await page.getByTestId('batch-cancel').click();
  await expect(page.getByTestId('batch-progress-text')).toContainText('paused');
  await page.waitForTimeout(4000);
  await page.getByTestId('batch-resume').click();
  await expect(page.getByTestId('batch-progress-text')).toContainText('finished', { timeout: 120_000 });
  const b = await batchState(page);
  const wall = b.finishedAt! - b.startedAt!;
  expect(wall - b.activeMs).toBeGreaterThan(3500);
  expect(b.imagesPerSecond!).toBeCloseTo(32 / (b.activeMs / 1000), 5);
  const shown = Number((await page.getByTestId('batch-throughput').innerText()).split(' ')[0]);
  expect(shown).toBeCloseTo(b.imagesPerSecond!, 1);
});

test('CSV export: one threshold for every column, named in labeled_dataset.meta.json', async ({ page }) => {
  needsSharedData();
  const id = smallClassifierId();
  needsModel(id);
  await openApp(page, { backend: 'wasm', classifier: id });
  await page.getByRole('button', { name: 'Batch' }).click();
  const root = tempTree({ 'set/NORMAL': kermanyFiles('NORMAL', 6), 'set/PNEUMONIA': kermanyFiles('PNEUMONIA', 6) });
  try {
    await page.getByTestId('batch-folder-input').setInputFiles(path.join(root, 'set'));
    await expect(page.getByTestId('batch-progress-text')).toContainText('finished', { timeout: 120_000 });
    await page.getByLabel('Decision threshold').fill('0.3');
    await expect(page.getByTestId('batch-export-threshold')).toHaveText('at threshold 0.30 (user (slider))');
    const downloads: { name: string; text: string }[] = [];
    page.on('download', async (d) => downloads.push({ name: d.suggestedFilename(), text: fs.readFileSync(await d.path(), 'utf8') }));
    await page.getByTestId('batch-export').click();
    await expect.poll(() => downloads.length).toBe(3);
    const csv = downloads.find((d) => d.name === 'labeled_dataset.csv')!.text.trim().split(/\r?\n/).map((l) => l.split(','));
    const meta = JSON.parse(downloads.find((d) => d.name === 'labeled_dataset.meta.json')!.text);
    expect(meta).toMatchObject({ threshold: 0.3, threshold_source: 'user (slider)', positive_label: 'PNEUMONIA', n_rows: 12 });
    const [header, ...rows] = csv;
    const col = (n: string) => header.indexOf(n);
    expect(rows).toHaveLength(12);
    for (const r of rows) {
      const p = Number(r[col('classifier_probability')]);
      expect(r[col('classifier_prediction')]).toBe(p >= 0.3 ? 'PNEUMONIA' : 'NORMAL');
      if (meta.auto_label_source.startsWith('classifier')) {
        expect(r[col('auto_label')]).toBe(r[col('classifier_prediction')]);
        expect(Number(r[col('confidence_score')])).toBeCloseTo(p >= 0.3 ? p : 1 - p, 5);
      }
    }
    // The metrics report (what `npm run label` prints last) at the same threshold, recomputed from the CSV.
    const report = JSON.parse(downloads.find((d) => d.name === 'labeled_dataset.metrics.json')!.text);
    expect(report).toMatchObject({ threshold: 0.3, n: 12, n_with_ground_truth: 12, positive_label: 'PNEUMONIA' });
    const right = rows.filter((r) => r[col('classifier_prediction')] === r[col('ground_truth')]).length;
    expect(report.accuracy).toBeCloseTo(right / 12, 12);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("the manifest's labels (not NORMAL/PNEUMONIA) drive ground truth, table and metrics", async ({ page }) => {
  needsSharedData();
  const id = smallClassifierId();
  needsModel(id);
  // The same binary classifier, its labels renamed in the manifest the app reads.
  await page.route('**/models/manifest.json', async (route) => {
    const res = await route.fetch();
    const m = await res.json();
    for (const e of m.models) if (e.id === id) e.labels = ['no_finding', 'opacity'];
    await route.fulfill({ response: res, json: m });
  });
  await openApp(page, { backend: 'wasm', classifier: id });
  await page.getByRole('button', { name: 'Batch' }).click();
  const root = tempTree({ 'set/no_finding': kermanyFiles('NORMAL', 4), 'set/opacity': kermanyFiles('PNEUMONIA', 4) });
  try {
    await page.getByTestId('batch-folder-input').setInputFiles(path.join(root, 'set'));
    await expect(page.getByTestId('batch-progress-text')).toContainText('8 / 8 processed', { timeout: 120_000 });
    const table = page.getByTestId('batch-table');
    await expect(table.locator('thead')).toContainText('P(opacity)');
    const rowOf = (sub: string) => table.locator('tbody tr', { hasText: `set/${sub}/` });
    await expect(rowOf('no_finding')).toHaveCount(4);
    for (const sub of ['no_finding', 'opacity']) {
      await expect(rowOf(sub).first().locator('td').nth(3)).toHaveText(sub); // ground truth from the folder name
      await expect(rowOf(sub).first().locator('td').nth(5)).toHaveText(/^(no_finding|opacity)$/); // classifier at the threshold
    }
    await expect(page.getByTestId('confusion-matrix')).toContainText('pred opacity');
    await expect(page.getByTestId('confusion-matrix')).toContainText('true no_finding');
    await expect(page.getByTestId('batch-metrics')).toContainText('Threshold on P(opacity)');
    await expect(page.getByTestId('batch-metrics')).not.toContainText('PNEUMONIA');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('Models view "Verify" re-hashes the cached files and repairs a damaged one', async ({ page }) => {
  const id = smallClassifierId();
  needsModel(id);
  const errors = watchErrors(page);
  await openApp(page, { backend: 'wasm' });
  await page.getByRole('button', { name: 'Models' }).click();
  await page.getByTestId(`download-${id}`).click();
  await expect(page.getByTestId(`model-state-${id}`)).toContainText('downloaded (fp32');
  const file = Object.values(readManifest()!.models.find((m) => m.id === id)!.variants)[0].files.find((f) => f.path.endsWith('.onnx'))!;
  // Damage the cached bytes in place (same length, same recorded sha256), as a disk or browser fault would.
  await page.evaluate(async (p) => {
    const cache = await caches.open('cxr-models-v1');
    const key = (await cache.keys()).find((k) => k.url.endsWith(p))!;
    const res = (await cache.match(key))!;
    const b = new Uint8Array(await res.arrayBuffer());
    b[Math.floor(b.length / 2)] ^= 0xff;
    await cache.put(key, new Response(b, { headers: res.headers }));
  }, file.path);
  const alerts = page.getByTestId('alerts');
  await page.getByTestId(`download-${id}`).click(); // "Verify"
  await expect(alerts).toContainText(`did not match their sha256 and were downloaded again (${file.path})`);
  const repaired = await page.evaluate(async (p) => {
    const cache = await caches.open('cxr-models-v1');
    const key = (await cache.keys()).find((k) => k.url.endsWith(p))!;
    return Array.from(new Uint8Array(await (await cache.match(key))!.arrayBuffer()));
  }, file.path);
  expect(createHash('sha256').update(Buffer.from(repaired)).digest('hex')).toBe(file.sha256);
  await page.getByTestId(`download-${id}`).click();
  await expect(alerts).toContainText('re-hashed, sha256 matches the manifest');
  expect(errors).toEqual([]);
});
