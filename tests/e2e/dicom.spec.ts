import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { addFiles, DICOM_DIR, openApp, shot, watchErrors, needsSharedFile } from './helpers';

const DCM = path.join(DICOM_DIR, 'nih_cxr14_dx_1024.dcm');

test('a real DICOM displays with its window and no identifying fields until asked', async ({ page }) => {
  needsSharedFile(DCM);
  const header = JSON.parse(fs.readFileSync(DCM.replace(/\.dcm$/, '.json'), 'utf8')) as Record<string, { Value?: unknown[] }>;
  const patientName = (header['00100010']?.Value?.[0] as { Alphabetic: string }).Alphabetic;
  const patientId = String(header['00100020']?.Value?.[0]);
  const errors = watchErrors(page);
  await openApp(page);
  await addFiles(page, [DCM]);
  const info = page.getByTestId('dicom-info');
  await expect(info).toBeVisible();
  await expect(info).toContainText('DX');
  await expect(info).toContainText('1024×1024');
  // The viewer uses the file's window (here: none in the header, so its min/max window, as the DICOM info says).
  const win = await page.evaluate(() => {
    const s = (window as unknown as { cxrStudio: { store: { getState(): { viewer: { window?: { center: number; width: number } }; images: { dicom?: { window: { center: number; width: number }; windowSource: string } }[] } } } }).cxrStudio.store.getState();
    return { viewer: s.viewer.window, file: s.images[0].dicom?.window, source: s.images[0].dicom?.windowSource };
  });
  // No window dragged yet: the viewer shows the default preset, whose window the sliders show.
  expect(win.viewer).toBeUndefined();
  await expect(page.getByTestId('window-center')).toHaveText(String(Math.round(win.file!.center)));
  await expect(page.getByTestId('window-width')).toHaveText(String(Math.round(win.file!.width)));
  // Pixels really drawn: the canvas centre is not black.
  const lum = await page.getByTestId('viewer-canvas').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(c.width / 2 - 50, c.height / 2 - 50, 100, 100).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s += d[i];
    return s / (d.length / 4);
  });
  expect(lum).toBeGreaterThan(20);
  await shot(page, 'dicom');
  // Window/level, zoom and pan respond.
  await page.getByLabel('Window level (center)').fill('60');
  await expect(page.getByTestId('window-center')).toHaveText('60');
  const canvas = page.getByTestId('viewer-canvas');
  const box = (await canvas.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, -300);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 40, box.y + box.height / 2 + 20);
  await page.mouse.up();
  const v = await page.evaluate(() => (window as unknown as { cxrStudio: { store: { getState(): { viewer: { zoom: number; panX: number } } } } }).cxrStudio.store.getState().viewer);
  expect(v.zoom).toBeGreaterThan(1.5);
  expect(v.panX).toBeCloseTo(40, 0);
  // Identifying fields hidden by default.
  const body = page.locator('body');
  await expect(body).not.toContainText(patientName);
  await expect(body).not.toContainText(patientId);
  await page.getByTestId('toggle-identifying').click();
  await expect(page.getByTestId('identifying-fields')).toContainText(patientName);
  await page.getByTestId('toggle-identifying').click();
  await expect(body).not.toContainText(patientName);
  expect(errors).toEqual([]);
});
