/**
 * Issue 8, non-DICOM inputs in the real browser: 16-bit PNG windowed by its stored range and EXIF orientation
 * giving the same pixels as the Node decoder (`npm run label`); a zip with a Deflate64 entry keeps its readable
 * entry and names the skipped one; a folder dropped on the batch zone is walked (a real directory handle from the
 * Origin Private File System, the File System Access path Chromium takes for dropped folders).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect, test, type Page } from '@playwright/test';
import { decodeImageFileNode } from '../../app/platform/node/decode';
import { addFiles, KERMANY, hasSharedData, kermanyImage, openApp, REPO, SHARED, smallClassifierId, watchErrors } from './helpers';

const BUG = path.join(SHARED, 'data/bugreports');

/** The last image's displayed raster and decode notes, read from the app's store. */
async function lastImage(page: Page): Promise<{ width: number; height: number; data: number[]; notes: string[] }> {
  await expect.poll(() => page.evaluate(() => (window as never as { cxrStudio: { store: { getState(): { images: unknown[] } } } }).cxrStudio.store.getState().images.length)).toBeGreaterThan(0);
  return page.evaluate(() => {
    const s = (window as never as { cxrStudio: { store: { getState(): { images: { raster: { width: number; height: number; data: Uint8ClampedArray }; rasterInfo?: { notes: string[] } }[] } } } }).cxrStudio.store.getState();
    const im = s.images[s.images.length - 1];
    return { width: im.raster.width, height: im.raster.height, data: Array.from(im.raster.data), notes: im.rasterInfo?.notes ?? [] };
  });
}

test('16-bit PNG: full precision, stored-range window, same pixels as the Node decoder', async ({ page }) => {
  const file = path.join(BUG, '11-png16-12bit-values/image.png');
  test.skip(!fs.existsSync(file), 'needs ../shared/data/bugreports');
  const errors = watchErrors(page);
  await openApp(page);
  await addFiles(page, [file]);
  const got = await lastImage(page);
  const node = await decodeImageFileNode(new Uint8Array(fs.readFileSync(file)));
  expect([got.width, got.height]).toEqual([node.width, node.height]);
  expect(got.data).toEqual(Array.from(node.raster.data));
  const exp = JSON.parse(fs.readFileSync(path.join(BUG, '11-png16-12bit-values/expected.json'), 'utf8'));
  expect(got.data.filter((_, i) => i % 4 === 0).slice(0, 8)).toEqual(exp.windowed_first);
  await expect(page.getByTestId('decode-notes')).toContainText('16-bit PNG windowed by its stored range 200–3800');
  expect(errors).toEqual([]);
});

test('EXIF orientation 6: shown and analysed upright, as the Node decoder and export-scripts do', async ({ page }) => {
  const file = path.join(BUG, '12-jpeg-exif-orientation-6/image.jpg');
  test.skip(!fs.existsSync(file), 'needs ../shared/data/bugreports');
  await openApp(page);
  await addFiles(page, [file]);
  const got = await lastImage(page);
  const node = await decodeImageFileNode(new Uint8Array(fs.readFileSync(file)));
  expect([got.width, got.height]).toEqual([48, 64]);
  expect([node.width, node.height]).toEqual([48, 64]);
  // Chromium's libjpeg-turbo and jpeg-js differ by a few levels in the IDCT; a wrong orientation differs by ~100.
  let maxDiff = 0;
  for (let i = 0; i < got.data.length; i++) if (i % 4 !== 3) maxDiff = Math.max(maxDiff, Math.abs(got.data[i] - node.raster.data[i]));
  expect(maxDiff).toBeLessThanOrEqual(8);
  await expect(page.getByTestId('decode-notes')).toContainText('EXIF orientation 6 applied');
});

test('batch: a zip with a Deflate64 entry keeps the readable entry and names the skipped one', async ({ page }) => {
  const file = path.join(BUG, '13-zip-deflate64-entry/batch.zip');
  test.skip(!fs.existsSync(file), 'needs ../shared/data/bugreports');
  await openApp(page, { backend: 'wasm', classifier: smallClassifierId() });
  await page.getByRole('button', { name: 'Batch' }).click();
  await page.getByTestId('batch-file-input').setInputFiles(file);
  await expect(page.getByTestId('batch-table').locator('tbody tr')).toHaveCount(1);
  await expect(page.getByTestId('batch-table')).toContainText('NORMAL/a.png');
  await expect(page.getByTestId('alerts')).toContainText('PNEUMONIA/b.png (compression method 9 (Deflate64) is not supported');
});

test('batch: a folder dropped on the batch zone is walked (directory handle), folders give the ground truth', async ({ page }) => {
  test.skip(!hasSharedData(), 'needs ../shared/data/kermany-cxr-224');
  await openApp(page, { backend: 'wasm', classifier: smallClassifierId() });
  await page.getByRole('button', { name: 'Batch' }).click();
  const pick = (label: string) => fs.readdirSync(path.join(KERMANY, 'test', label)).sort().slice(0, 3).map((f) => ({ name: f, bytes: [...fs.readFileSync(path.join(KERMANY, 'test', label, f))] }));
  const tree = { NORMAL: pick('NORMAL'), PNEUMONIA: pick('PNEUMONIA') };
  await page.evaluate(async (tree) => {
    // A real directory in the Origin Private File System, dropped through a DataTransfer item whose
    // getAsFileSystemHandle() returns its handle (what Chromium does for a dropped folder).
    const root = await navigator.storage.getDirectory();
    await root.removeEntry('dropped', { recursive: true }).catch(() => undefined);
    const dir = await root.getDirectoryHandle('dropped', { create: true });
    for (const [label, files] of Object.entries(tree)) {
      const sub = await dir.getDirectoryHandle(label, { create: true });
      for (const f of files) {
        const w = await (await sub.getFileHandle(f.name, { create: true })).createWritable();
        await w.write(new Uint8Array(f.bytes));
        await w.close();
      }
    }
    const item = { kind: 'file', getAsFile: () => null, webkitGetAsEntry: () => null, getAsFileSystemHandle: async () => dir };
    const ev = new DragEvent('drop', { bubbles: true, cancelable: true });
    Object.defineProperty(ev, 'dataTransfer', { value: { items: [item], files: [], types: ['Files'] } });
    document.querySelector('[data-testid="batch-dropzone"]')!.dispatchEvent(ev);
  }, tree);
  const rows = page.getByTestId('batch-table').locator('tbody tr');
  await expect(rows).toHaveCount(6);
  await expect(rows.first()).toContainText('dropped/NORMAL/');
  await expect(rows.nth(5)).toContainText('dropped/PNEUMONIA/');
  await expect(rows.nth(5).locator('td').nth(3)).toHaveText('PNEUMONIA');
  await expect(page.getByTestId('batch-progress-text')).toContainText('6 / 6 processed', { timeout: 90_000 });
});

test('a large file being decoded shows its progress and can be cancelled; the app keeps working', async ({ page }) => {
  test.skip(!hasSharedData(), 'needs ../shared/data/kermany-cxr-224');
  const py = path.join(REPO, '.venv/bin/python');
  test.skip(!fs.existsSync(py), 'needs .venv (Pillow) to write the 10000×10000 PNG');
  const big = path.join(os.tmpdir(), `cxr-big-${process.pid}.png`);
  execFileSync(py, ['-c', 'import sys, numpy as np; from PIL import Image; y = np.arange(10000, dtype=np.uint32); Image.fromarray(((y[:, None] // 7 + y[None, :] // 5) % 256).astype(np.uint8), "L").save(sys.argv[1], compress_level=1)', big]);
  try {
    const errors = watchErrors(page);
    await openApp(page);
    await addFiles(page, [big]);
    await expect(page.getByTestId('decode-progress')).toContainText('decoding');
    await expect(page.getByTestId('decode-progress').getByRole('progressbar')).toBeVisible();
    await page.getByTestId('decode-cancel').click();
    await expect(page.getByTestId('alerts')).toContainText('Opening cancelled: 0 of 1 files opened');
    await expect(page.getByTestId('decode-progress')).toHaveCount(0);
    const images = page.getByRole('list', { name: 'Opened images' }).getByRole('listitem');
    await expect(images).toHaveCount(0);
    // a fresh imaging worker takes the next file
    await addFiles(page, [kermanyImage('NORMAL', 0)]);
    await expect(images).toHaveCount(1);
    expect(errors).toEqual([]);
  } finally {
    fs.rmSync(big, { force: true });
  }
});
