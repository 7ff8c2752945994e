/**
 * Compressed DICOMs in Chromium: the imaging worker loads each codec's wasm lazily from the app's own origin, the
 * decoded pixels equal Node's decode of the same files (which tests/unit/imaging/codecs-pydicom.test.ts compares
 * with pydicom), and after one online visit the codecs work offline (precached by the service worker).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { decodeImageFileNode } from '../../app/platform/node/decode';
import { addFiles, APP_HOST, openApp, SHARED, watchErrors } from './helpers';

const DIR = path.join(SHARED, 'data/dicom-codecs/files');
const FILES = [
  'XA1_JLSL', // JPEG-LS, CharLS
  'JPEGLossless_1s_1f_u_16_12.dcm', // JPEG Lossless P14, jpeg-lossless-decoder-js
  'CT0012.fragmented_no_bot_jpeg_baseline.51.dcm', // 12-bit JPEG Extended, dcmjs-codecs
  'HTJ2K_08_RGB.dcm', // HTJ2K, OpenJPH
  'XA1_J2KI', // JPEG 2000, OpenJPEG
  'Monochrome1-Jpeg.dcm', // JPEG baseline, libjpeg-turbo
  'gdcm-US-ALOKA-16.dcm', // PALETTE COLOR (segmented), native
];

type Digest = { name: string; width: number; height: number; pixels: string; rgb: string | null; raster: string; codec: string | null };

function sha(a: ArrayBufferView): string {
  return crypto.createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
}

async function browserDigests(page: Page, n: number): Promise<Digest[]> {
  await expect.poll(() => page.evaluate(() => (window as unknown as { cxrStudio: { store: { getState(): { images: unknown[] } } } }).cxrStudio.store.getState().images.length), { timeout: 120_000 }).toBe(n);
  return page.evaluate(async () => {
    const hex = async (a: ArrayBufferView) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice()))).map((b) => b.toString(16).padStart(2, '0')).join('');
    type Img = { name: string; raster: { data: Uint8ClampedArray }; dicom: { width: number; height: number; pixels: Float32Array; rgb?: Uint8Array; codec?: string } };
    const images = (window as unknown as { cxrStudio: { store: { getState(): { images: Img[] } } } }).cxrStudio.store.getState().images;
    const out = [];
    for (const i of images) out.push({ name: i.name, width: i.dicom.width, height: i.dicom.height, pixels: await hex(i.dicom.pixels), rgb: i.dicom.rgb ? await hex(i.dicom.rgb) : null, raster: await hex(i.raster.data), codec: i.dicom.codec ?? null });
    return out;
  });
}

test('compressed DICOMs decode in Chromium exactly as in Node, codecs served by the app itself', async ({ page }) => {
  test.skip(!fs.existsSync(DIR), 'needs ../shared/data/dicom-codecs');
  const errors = watchErrors(page);
  const wasm: string[] = [];
  page.on('request', (r) => {
    if (/\.wasm(\?|$)/.test(r.url())) wasm.push(r.url());
  });
  await openApp(page);
  expect(wasm.filter((u) => /charls|openjpeg|openjph|libjpegturbo|dcmjs/.test(u))).toEqual([]); // lazily: none before a file needs one
  await addFiles(page, FILES.map((f) => path.join(DIR, f)));
  const got = await browserDigests(page, FILES.length);
  for (const f of FILES) {
    const d = await decodeImageFileNode(new Uint8Array(fs.readFileSync(path.join(DIR, f))));
    const want: Digest = { name: f, width: d.width, height: d.height, pixels: sha(d.dicom!.pixels), rgb: d.dicom!.rgb ? sha(d.dicom!.rgb) : null, raster: sha(d.raster.data), codec: d.dicom!.codec ?? null };
    expect(got.find((g) => g.name === f), f).toEqual(want);
  }
  const codecWasm = wasm.filter((u) => /charls|openjpeg|openjph|libjpegturbo|dcmjs/.test(u));
  expect(codecWasm.length).toBeGreaterThanOrEqual(5);
  for (const u of codecWasm) expect(new URL(u).host).toBe(APP_HOST);
  expect(errors).toEqual([]);
});

test.describe('offline', () => {
  test.use({ serviceWorkers: 'allow' });
  test('after one online visit, every codec works offline (precached wasm)', async ({ page, context }) => {
    test.skip(!fs.existsSync(DIR), 'needs ../shared/data/dicom-codecs');
    const errors = watchErrors(page);
    await page.goto('/');
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
    });
    await context.setOffline(true);
    await page.reload();
    await expect(page.getByTestId('dropzone')).toBeVisible();
    // no DICOM was opened online: the codecs come from the precache
    const files = ['XA1_JLSL', 'CT0012.fragmented_no_bot_jpeg_baseline.51.dcm', 'HTJ2K_08_RGB.dcm', 'XA1_J2KI', 'Monochrome1-Jpeg.dcm'];
    await addFiles(page, files.map((f) => path.join(DIR, f)));
    const got = await browserDigests(page, files.length);
    expect(got.map((g) => g.codec)).toEqual(['@cornerstonejs/codec-charls', 'dcmjs-codecs', '@cornerstonejs/codec-openjph', '@cornerstonejs/codec-openjpeg', '@cornerstonejs/codec-libjpeg-turbo-8bit']);
    await context.setOffline(false);
    expect(errors).toEqual([]);
  });
});

test('viewer: VOI presets selectable, model input says its window, frame picker decodes the frame on demand', async ({ page }) => {
  test.skip(!fs.existsSync(DIR), 'needs ../shared/data/dicom-codecs');
  const errors = watchErrors(page);
  await openApp(page);
  await addFiles(page, [path.join(DIR, 'GH133.dcm')]);
  const preset = page.getByTestId('voi-preset');
  await expect(preset).toBeVisible({ timeout: 60_000 });
  // 3 VOI LUTs, 3 windows, the full range; the default is the file's first VOI LUT, and the model input says so
  await expect(preset.locator('option')).toHaveCount(7);
  await expect(preset.locator('option:checked')).toHaveText('VOI LUT 1 (NORMAL)');
  await expect(page.getByTestId('model-input-display')).toHaveText('Model input: rendered with VOI LUT 1 (NORMAL)');
  const centre = () => page.getByTestId('viewer-canvas').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(c.width / 2 - 40, c.height / 2 - 40, 80, 80).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s += d[i];
    return s / (d.length / 4);
  });
  const before = await centre();
  // the full range leaves out the mammogram's background, which its Pixel Padding Value 0..30 marks
  await preset.selectOption('full-range');
  await expect(preset.locator('option:checked')).toHaveText('Full range 31..3471: C 1751.5 / W 3441');
  await expect.poll(centre).not.toBeCloseTo(before, 0);
  await expect(page.getByTestId('model-input-display')).toContainText('the view above uses another window; the models do not');
  await expect(page.getByTestId('window-center')).toHaveText('1752');

  await addFiles(page, [path.join(DIR, 'CT0012.fragmented_no_bot_jpeg_baseline.51.dcm')]);
  const picker = page.getByTestId('frame-picker');
  await expect(picker).toBeVisible({ timeout: 60_000 });
  await expect(picker.locator('option')).toHaveCount(2);
  await picker.selectOption('1');
  await expect(page.getByTestId('model-input-display')).toContainText('Model input (frame 2)');
  const digest = await page.evaluate(async () => {
    type Img = { name: string; dicom: { frameIndex: number; pixels: Float32Array } };
    const img = (window as unknown as { cxrStudio: { store: { getState(): { images: Img[] } } } }).cxrStudio.store.getState().images.find((i) => i.name.startsWith('CT0012'))!;
    const h = await crypto.subtle.digest('SHA-256', img.dicom.pixels.slice().buffer);
    return { frame: img.dicom.frameIndex, sha: Array.from(new Uint8Array(h)).map((b) => b.toString(16).padStart(2, '0')).join('') };
  });
  const node = await decodeImageFileNode(new Uint8Array(fs.readFileSync(path.join(DIR, 'CT0012.fragmented_no_bot_jpeg_baseline.51.dcm'))), { frame: 1 });
  expect(digest).toEqual({ frame: 1, sha: sha(node.dicom!.pixels) });
  expect(errors).toEqual([]);
});
