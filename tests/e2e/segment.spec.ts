import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { expect, test, type Page } from '@playwright/test';
import { addFiles, manifestHas, openApp, REPO, SHARED, shot, watchErrors } from './helpers';

/**
 * The Segment view in Chromium with real X-rays from ../shared and the tiny SAM fixtures: clicks, a box, undo,
 * exports, the embedding cache across a reload, WebGPU (SwiftShader), a graph with the wrong interface, and the
 * browser's mask logits against PyTorch through the real worker.
 */
const LUNG_DIR = path.join(SHARED, 'data/cxr-lung-masks');
const MODEL = process.env.CXR_E2E_SEGMENT_MODEL ?? 'tiny-sam';
const GOLD = path.join(REPO, 'tests/segment-goldens');

function lungImage(i = 0): string {
  const dir = path.join(LUNG_DIR, 'images');
  return path.join(dir, fs.readdirSync(dir).sort()[i]);
}

async function openSegment(page: Page, model = MODEL, backend: 'wasm' | 'webgpu' | 'auto' = 'wasm') {
  await openApp(page, { backend });
  await page.getByRole('button', { name: 'Segment', exact: true }).click();
  await expect(page.getByTestId('segment-model').locator(`option[value="${model}"]`)).toHaveCount(1);
  await page.getByTestId('segment-model').selectOption(model);
}

/** Click at image pixel (x, y) of the overlay. */
async function clickImage(page: Page, x: number, y: number, w: number, h: number, opts: { shift?: boolean } = {}) {
  const box = (await page.getByTestId('segment-overlay').boundingBox())!;
  const px = box.x + ((x + 0.5) * box.width) / w;
  const py = box.y + ((y + 0.5) * box.height) / h;
  if (opts.shift) await page.keyboard.down('Shift');
  await page.mouse.click(px, py);
  if (opts.shift) await page.keyboard.up('Shift');
}

const step = (s: string) => console.log(`[segment-e2e ${new Date().toISOString().slice(11, 19)}] ${s}`);

async function layerArea(page: Page): Promise<string> {
  return (await page.getByTestId('segment-layer-area').first().textContent()) ?? '';
}

test.describe('segment view', () => {
  test.skip(!fs.existsSync(LUNG_DIR), 'needs ../shared/data/cxr-lung-masks');

  test('real X-ray: click, box, undo, exports, and a reload reuses the cached embedding', async ({ page }) => {
    // many steps, each a decode of a 1024-px mask: minutes on a loaded 2-core machine
    test.setTimeout(480_000);
    const errors = watchErrors(page);
    await openSegment(page);
    const file = lungImage(0);
    await addFiles(page, [file]);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 90_000 });
    const size = await page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      const it = s.images.find((i: any) => i.id === s.currentId);
      return [it.raster.width, it.raster.height];
    });
    const [w, h] = size as [number, number];
    await expect(page.getByTestId('weights-badge')).toContainText('RANDOM WEIGHTS');

    step('positive click');
    // positive click → three masks with predicted IoU, the best one selected
    await clickImage(page, w * 0.3, h * 0.45, w, h);
    await expect(page.getByTestId('segment-candidate')).toHaveCount(3);
    const ious = await page.getByTestId('segment-candidate').allTextContents();
    const vals = ious.map((t) => Number(/: (-?[\d.]+)/.exec(t)![1]));
    const best = vals.indexOf(Math.max(...vals));
    await expect(page.getByTestId('segment-candidate').nth(best)).toHaveAttribute('aria-pressed', 'true');
    await expect(page.getByTestId('segment-layer-area').first()).toContainText('px');
    const areaClick = await layerArea(page);
    await shot(page, 'segment-click');

    step('negative click');
    // negative click, then a dragged box (box + clicks)
    await clickImage(page, w * 0.7, h * 0.45, w, h, { shift: true });
    const ov = (await page.getByTestId('segment-overlay').boundingBox())!;
    await page.mouse.move(ov.x + ov.width * 0.12, ov.y + ov.height * 0.15);
    await page.mouse.down();
    await page.mouse.move(ov.x + ov.width * 0.3, ov.y + ov.height * 0.5, { steps: 4 });
    await page.mouse.move(ov.x + ov.width * 0.48, ov.y + ov.height * 0.85, { steps: 4 });
    await page.mouse.up();
    await expect.poll(async () => page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      const st = s.sam.byImage[`${s.currentId}#f0`];
      return st.history.present[0].box ? st.history.past.length : -1;
    })).toBe(3);
    const areaBox = await layerArea(page);
    await shot(page, 'segment-box');

    step('undo twice');
    // undo twice → the single-click mask again; redo → the box again
    await page.getByTestId('segment-undo').click({ timeout: 30_000 });
    await page.getByTestId('segment-undo').click({ timeout: 30_000 });
    step('undone');
    await expect.poll(() => layerArea(page), { timeout: 90_000 }).toBe(areaClick);
    await page.getByTestId('segment-redo').click({ timeout: 30_000 });
    await page.getByTestId('segment-redo').click({ timeout: 30_000 });
    step('redone');
    await expect.poll(() => layerArea(page), { timeout: 90_000 }).toBe(areaBox);

    step('a second labelled mask');
    // a second labelled mask
    await page.getByTestId('segment-add-layer').click();
    await clickImage(page, w * 0.7, h * 0.5, w, h);
    await expect(page.getByTestId('segment-layer')).toHaveCount(2);
    await expect(page.getByTestId('segment-layer-area').nth(1)).toContainText('px');

    step('exports:');
    // exports: one PNG per mask at the image's own size, polygons JSON in image coordinates
    const pngDl = page.waitForEvent('download');
    await page.getByTestId('segment-export-png').click();
    const dl = await pngDl;
    // named by lung side when the (random-weights) mask lies in one half of the image, else "mask 1"
    expect(dl.suggestedFilename()).toMatch(/_(right_lung|left_lung|mask_1)_mask\.png$/);
    const png = PNG.sync.read(fs.readFileSync((await dl.path())!));
    expect([png.width, png.height]).toEqual([w, h]);
    let on = 0;
    for (let i = 0; i < png.data.length; i += 4) on += png.data[i] === 255 ? 1 : 0;
    expect(`${on} px`).toBe(areaBox);
    const polyDl = page.waitForEvent('download');
    await page.getByTestId('segment-export-polygons').click();
    const poly = JSON.parse(fs.readFileSync((await (await polyDl).path())!, 'utf8'));
    expect(poly).toMatchObject({ width: w, height: h });
    const labels = poly.masks.map((m: any) => m.label);
    expect(labels).toHaveLength(2);
    for (const l of labels) expect(l).toMatch(/^(right lung|left lung|mask [12])( \d)?$/);
    expect(new Set(labels).size).toBe(2);
    // one expect over all vertices (a per-vertex expect on a random-weights mask would take minutes)
    let outside = 0, vertices = 0;
    for (const m of poly.masks) for (const ring of m.polygons) for (const [x, y] of ring) { vertices++; if (!(x >= 0 && x <= w && y >= 0 && y <= h)) outside++; }
    expect(vertices).toBeGreaterThan(0);
    expect(outside).toBe(0);
    step(`polygons: ${vertices} vertices`);

    step('reload:');
    // reload: the same image is not encoded again (IndexedDB)
    await page.reload();
    await page.getByRole('button', { name: 'Segment', exact: true }).click();
    await page.getByTestId('segment-model').selectOption(MODEL);
    await addFiles(page, [file]);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding from cache (IndexedDB)', { timeout: 60_000 });
    await clickImage(page, w * 0.3, h * 0.45, w, h);
    await expect.poll(() => layerArea(page), { timeout: 90_000 }).toBe(areaClick);
    await shot(page, 'segment-reload-cached');
    expect(errors).toEqual([]);
  });

  test("the project's own lung-sam is the default model and segments a lung from its box", async ({ page }) => {
    test.skip(!manifestHas('lung-sam'), 'lung-sam is not in the manifest');
    test.setTimeout(300_000);
    const errors = watchErrors(page);
    await openApp(page, { backend: 'wasm' });
    await page.getByRole('button', { name: 'Segment', exact: true }).click();
    await expect(page.getByTestId('segment-model')).toHaveValue('lung-sam');
    await expect(page.getByTestId('weights-badge')).toContainText('trained research model');
    const file = lungImage(0);
    const name = path.basename(file).replace(/\.[^.]+$/, '');
    const box = JSON.parse(fs.readFileSync(path.join(LUNG_DIR, 'boxes.json'), 'utf8'))[name].right_lung as number[];
    await addFiles(page, [file]);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 120_000 });
    const [w, h] = (await page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      const it = s.images.find((i: any) => i.id === s.currentId);
      return [it.raster.width, it.raster.height];
    })) as [number, number];
    const ov = (await page.getByTestId('segment-overlay').boundingBox())!;
    const at = (x: number, y: number) => [ov.x + (x * ov.width) / w, ov.y + (y * ov.height) / h] as const;
    await page.mouse.move(...at(box[0], box[1]));
    await page.mouse.down();
    await page.mouse.move(...at((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), { steps: 3 });
    await page.mouse.move(...at(box[2], box[3]), { steps: 3 });
    await page.mouse.up();
    await expect(page.getByTestId('segment-candidates')).toBeVisible({ timeout: 90_000 });
    // a lung-sized mask, not an empty or whole-image one
    const area = Number(/(\d+) px/.exec((await page.getByTestId('segment-layer-area').first().textContent()) ?? '')?.[1] ?? 0);
    const boxArea = (box[2] - box[0]) * (box[3] - box[1]);
    expect(area).toBeGreaterThan(0.3 * boxArea);
    expect(area).toBeLessThan(1.2 * boxArea);
    // the mask is named by its side: the patient's right lung lies on the image's left (PA/AP)
    await expect(page.getByLabel('mask label').first()).toHaveValue('right lung');
    const lbox = JSON.parse(fs.readFileSync(path.join(LUNG_DIR, 'boxes.json'), 'utf8'))[name].left_lung as number[];
    await page.getByTestId('segment-add-layer').click();
    await page.mouse.move(...at(lbox[0], lbox[1]));
    await page.mouse.down();
    await page.mouse.move(...at((lbox[0] + lbox[2]) / 2, (lbox[1] + lbox[3]) / 2), { steps: 3 });
    await page.mouse.move(...at(lbox[2], lbox[3]), { steps: 3 });
    await page.mouse.up();
    await expect(page.getByLabel('mask label').nth(1)).toHaveValue('left lung', { timeout: 90_000 });
    // The masks' canvas shows exactly the layers' masks at the image's size (it paints only the rectangle holding
    // their bounds, from the worker's region-limited upscale): every pixel's alpha is set iff a layer's mask has it.
    await expect
      .poll(
        () =>
          page.evaluate(() => {
            const s = (window as any).cxrStudio.store.getState();
            const it = s.images.find((i: any) => i.id === s.currentId);
            const st = Object.entries(s.sam.byImage).find(([k]) => k.startsWith(`${it.id}#`))![1] as any;
            const masks: Uint8Array[] = st.history.present.map((l: any) => l.masks?.[l.selected]).filter((m: any) => m?.length);
            const c = document.querySelector('canvas.segment-masks') as HTMLCanvasElement;
            const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
            let wrong = 0;
            let inside = 0;
            for (let i = 0; i < c.width * c.height; i++) {
              const any = masks.some((m) => m[i]);
              inside += any ? 1 : 0;
              if ((px[i * 4 + 3] > 0) !== any) wrong++;
            }
            return { layers: masks.length, size: `${c.width}x${c.height}`, wrong, painted: inside > 0 };
          }),
        { timeout: 30_000 },
      )
      .toEqual({ layers: 2, size: `${w}x${h}`, wrong: 0, painted: true });
    await shot(page, 'segment-lung-sam');
    expect(errors).toEqual([]);
  });

  test('hover preview: a burst of pointer moves costs at most one extra decode', async ({ page }) => {
    test.setTimeout(180_000);
    await openSegment(page);
    await addFiles(page, [lungImage(1)]);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding', { timeout: 90_000 });
    await expect(page.getByTestId('segment-embedding')).not.toContainText('encoding');
    const ov = (await page.getByTestId('segment-overlay').boundingBox())!;
    const before = await page.evaluate(() => (window as any).cxrStudio.store.getState().sam.hoverDecodes);
    // 30 moves dispatched in one task: the first starts a decode, the other 29 coalesce into one more
    await page.evaluate(({ x, y, w, hh }) => {
      const el = document.querySelector('[data-testid="segment-overlay"]')!;
      for (let i = 0; i < 30; i++) el.dispatchEvent(new PointerEvent('pointermove', { clientX: x + (w * (0.2 + i / 60)), clientY: y + hh * 0.5, bubbles: true }));
    }, { x: ov.x, y: ov.y, w: ov.width, hh: ov.height });
    await expect.poll(async () => page.evaluate(() => (window as any).cxrStudio.store.getState().sam.preview !== undefined)).toBe(true);
    // the first decode and the one coalesced request (on a loaded machine the second may end well after the first)
    const decodes = () => page.evaluate(() => (window as any).cxrStudio.store.getState().sam.hoverDecodes);
    await expect.poll(async () => (await decodes()) - before, { timeout: 60_000 }).toBe(2);
    await page.waitForTimeout(1500);
    expect((await decodes()) - before).toBe(2);
    await shot(page, 'segment-hover');
  });

  test('a DICOM image exports a DICOM SEG', async ({ page }) => {
    test.setTimeout(180_000);
    const dcm = path.join(SHARED, 'data/dicom/nih_cxr14_dx_1024.dcm');
    test.skip(!fs.existsSync(dcm), 'needs ../shared/data/dicom');
    await openSegment(page);
    await addFiles(page, [dcm]);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 90_000 });
    await clickImage(page, 300, 500, 1024, 1024);
    await expect(page.getByTestId('segment-layer-area').first()).toContainText('px');
    // asked at export time: without identifying fields, then with them (the source's PatientName is Covid0000)
    const exportSeg = async (choice: 'deidentified' | 'identifying') => {
      const dl = page.waitForEvent('download');
      await page.getByTestId('segment-export-seg').click();
      await expect(page.getByTestId('segment-export-seg-ask')).toBeVisible();
      await page.getByTestId(`segment-export-seg-${choice}`).click();
      await expect(page.getByTestId('segment-export-seg-ask')).toHaveCount(0);
      return fs.readFileSync((await (await dl).path())!);
    };
    const bytes = await exportSeg('deidentified');
    expect(bytes.subarray(128, 132).toString('latin1')).toBe('DICM');
    expect(bytes.includes(Buffer.from('1.2.840.10008.5.1.4.1.1.66.4'))).toBe(true);
    expect(bytes.includes(Buffer.from('Covid0000'))).toBe(false);
    const withId = await exportSeg('identifying');
    expect(withId.includes(Buffer.from('Covid0000'))).toBe(true);
  });

  test('WebGPU (SwiftShader) runs the tiny fixture', async ({ page }) => {
    // SwiftShader emulates the GPU on the CPU: even the 64-px fixture's encoder takes a minute on a busy machine
    test.setTimeout(480_000);
    const errors = watchErrors(page);
    await openSegment(page, 'tiny-sam', 'webgpu');
    await addFiles(page, [lungImage(2)]);
    await expect(page.getByTestId('segment-status')).toContainText('on webgpu', { timeout: 200_000 });
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 240_000 });
    await expect(page.getByTestId('segment-resident')).toContainText('resident on the GPU');
    const [w, h] = (await page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      const it = s.images.find((i: any) => i.id === s.currentId);
      return [it.raster.width, it.raster.height];
    })) as [number, number];
    await clickImage(page, w * 0.3, h * 0.5, w, h);
    await expect(page.getByTestId('segment-candidate')).toHaveCount(3, { timeout: 120_000 });
    await expect(page.getByTestId('segment-layer-area').first()).toContainText('px');
    await shot(page, 'segment-webgpu');
    expect(errors).toEqual([]);
  });

  test('with alerts showing the whole canvas stays visible and clickable; a double click adds two points', async ({ page }) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await openSegment(page);
    await addFiles(page, [lungImage(0)]);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 90_000 });
    await page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      s.alert('first test alert', 'info');
      s.alert('second test alert', 'info');
    });
    await expect(page.getByTestId('alert-item')).toHaveCount(2);
    // the image's bottom edge lies inside the visible part of its column, and the bottom row takes clicks
    await expect.poll(async () => page.evaluate(() => {
      const ov = document.querySelector('[data-testid="segment-overlay"]')!.getBoundingClientRect();
      const col = document.querySelector('.segment-center')!.getBoundingClientRect();
      const hit = document.elementFromPoint(ov.left + ov.width / 2, ov.bottom - 2);
      return ov.bottom <= Math.min(col.bottom, window.innerHeight) + 0.5 && hit?.getAttribute('data-testid') === 'segment-overlay';
    })).toBe(true);
    const [w, h] = (await page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      const it = s.images.find((i: any) => i.id === s.currentId);
      return [it.raster.width, it.raster.height];
    })) as [number, number];
    const points = () => page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      const st = s.sam.byImage[`${s.currentId}#f0`];
      return st.history.present.find((l: any) => l.id === st.activeLayer).points.length;
    });
    const ov = (await page.getByTestId('segment-overlay').boundingBox())!;
    await page.mouse.dblclick(ov.x + ov.width * 0.3, ov.y + ov.height * 0.5);
    await expect.poll(points, { timeout: 60_000 }).toBe(2);
    // a click on the image's last row lands there
    await clickImage(page, w * 0.5, h - 1, w, h);
    await expect.poll(points, { timeout: 60_000 }).toBe(3);
    const last = await page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      const st = s.sam.byImage[`${s.currentId}#f0`];
      return st.history.present.find((l: any) => l.id === st.activeLayer).points[2].y;
    });
    expect(last).toBeGreaterThan(h - 3);
    expect(errors).toEqual([]);
  });

  test('frame and model changes in flight: each embedding and mask belongs to the frame and model it came from', async ({ page }) => {
    test.setTimeout(240_000);
    const dcm = path.join(SHARED, 'data/dicom-codecs/files/CT0012.fragmented_no_bot_jpeg_baseline.51.dcm');
    test.skip(!fs.existsSync(dcm) || !manifestHas('tiny-sam-onnx'), 'needs the two-frame DICOM of ../shared and tiny-sam-onnx');
    const errors = watchErrors(page);
    await openSegment(page);
    await addFiles(page, [dcm]);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 90_000 });
    const state = () => page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      const f = (k: string) => {
        const st = s.sam.byImage[`${s.currentId}#${k}`];
        return st && { key: st.key ?? null, tag: st.keyTag ?? null, masks: st.history.present.filter((l: any) => l.masks?.length).length };
      };
      return { f0: f('f0'), f1: f('f1') };
    });
    const [w, h] = [512, 512];
    await clickImage(page, w * 0.5, h * 0.5, w, h);
    await expect.poll(async () => (await state()).f0?.masks).toBe(1);
    // frame 2 and two model changes, without waiting in between
    await page.evaluate(() => {
      const s = (window as any).cxrStudio.store.getState();
      void s.selectFrame(s.currentId, 1);
    });
    await page.getByTestId('segment-model').selectOption('tiny-sam-onnx');
    await page.getByTestId('segment-model').selectOption('tiny-sam');
    await expect.poll(async () => (await state()).f1?.tag ?? '', { timeout: 120_000 }).toMatch(/^tiny-sam\|/);
    const st = await state();
    expect(st.f1!.key).toBeTruthy();
    expect(st.f1!.key).not.toBe(st.f0!.key); // another frame, other pixels: another embedding
    expect(st.f1!.masks).toBe(0); // frame 1's masks never show frame 0's
    await expect(page.getByTestId('segment-layer-area').first()).toHaveText('empty');
    expect(st.f0!.masks).toBe(1); // frame 0 keeps its own
    expect(errors).toEqual([]);
  });

  test('folder evaluation: Dice per lung, distribution plot, clickable worst cases', async ({ page }) => {
    test.setTimeout(300_000);
    const errors = watchErrors(page);
    // three images of the lung-mask set, as a picked folder in the OS temp dir (never the repo)
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-segeval-'));
    const dir = path.join(root, 'lungs');
    fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'masks'));
    const boxes = JSON.parse(fs.readFileSync(path.join(LUNG_DIR, 'boxes.json'), 'utf8'));
    const pick: Record<string, unknown> = {};
    for (const f of fs.readdirSync(path.join(LUNG_DIR, 'images')).sort().slice(0, 3)) {
      const name = f.replace(/\.[^.]+$/, '');
      fs.copyFileSync(path.join(LUNG_DIR, 'images', f), path.join(dir, 'images', f));
      fs.copyFileSync(path.join(LUNG_DIR, 'masks', `${name}_mask.png`), path.join(dir, 'masks', `${name}_mask.png`));
      pick[name] = boxes[name];
    }
    fs.writeFileSync(path.join(dir, 'boxes.json'), JSON.stringify(pick));
    await openSegment(page);
    await page.getByTestId('segment-eval-input').setInputFiles(dir);
    // a second folder while this one runs is refused with a message (the file input is disabled; a drop reaches the store)
    await expect(page.getByTestId('segment-eval-input')).toBeDisabled();
    await page.evaluate(() => (window as any).cxrStudio.store.getState().segmentEvalFolder([], 'box'));
    await expect(page.getByTestId('alert-item').filter({ hasText: 'An evaluation is running' })).toHaveCount(1);
    await expect(page.getByTestId('segment-eval-summary')).toBeVisible({ timeout: 240_000 });
    await expect(page.getByTestId('segment-eval-progress')).toContainText('3 / 3 images');
    await expect(page.getByTestId('segment-eval-hist')).toHaveCount(2);
    await expect(page.getByTestId('segment-eval-summary').locator('tbody tr')).toHaveCount(2);
    const worst = page.getByTestId('segment-eval-worst');
    await expect(worst).toHaveCount(6);
    await worst.first().click();
    await expect(page.getByTestId('segment-eval-detail')).toContainText('Dice', { timeout: 60_000 });
    await page.getByTestId('segment-eval-detail').scrollIntoViewIfNeeded();
    await shot(page, 'segment-eval');
    expect(errors).toEqual([]);
  });

  test('a graph with the wrong interface gives a clear message and the app keeps working', async ({ page }) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    // A manifest entry whose "prompt decoder" is the classifier fixture: served by the app's own server, only the
    // manifest is rewritten in flight.
    await page.route('**/models/manifest.json', async (route) => {
      const res = await route.fetch();
      const m = await res.json();
      const cls = m.models.find((x: any) => x.id === 'tiny-vit-classifier');
      const sam = m.models.find((x: any) => x.id === 'tiny-sam');
      const enc = sam.variants.fp32.files.find((f: any) => f.role === 'image_encoder');
      const model = cls.variants.fp32.files.find((f: any) => f.role === 'model');
      m.models.push({ ...sam, id: 'broken-sam', name: 'Broken SAM (classifier as decoder)', variants: { fp32: { dtype: 'fp32', files: [enc, { ...model, role: 'prompt_decoder' }] } } });
      await route.fulfill({ response: res, json: m });
    });
    await openSegment(page, 'broken-sam');
    await addFiles(page, [lungImage(0)]);
    const err = page.getByTestId('segment-error');
    await expect(err).toContainText('no SAM decoder interface', { timeout: 90_000 });
    await expect(err).toContainText('Missing input image_embeddings, input point_coords');
    await shot(page, 'segment-wrong-interface');
    // the app keeps working: the image is still there, another model segments it
    await page.getByTestId('segment-model').selectOption('tiny-sam');
    // computed now, or by the tab's prewarm of the newly chosen model a moment earlier (then this request finds it
    // in memory): either way an embedding of this image by tiny-sam, and no error
    await expect(page.getByTestId('segment-embedding')).toContainText(/embedding (computed|from cache)/, { timeout: 90_000 });
    await expect(page.getByTestId('segment-error')).toHaveCount(0);
    expect(errors).toEqual([]);
  });
});

interface T { dims: number[]; data: number[] }
test('browser mask logits match PyTorch within 1e-4 for every fixture layout (real worker, WASM)', async ({ page }) => {
  test.setTimeout(240_000);
  const ids = fs.readdirSync(GOLD).filter((d) => fs.statSync(path.join(GOLD, d)).isDirectory()).sort();
  expect(ids).toEqual(['tiny-sam', 'tiny-sam-hf', 'tiny-sam-onnx']);
  await openApp(page, { backend: 'wasm' });
  await page.getByRole('button', { name: 'Segment', exact: true }).click();
  await addFiles(page, [path.join(GOLD, 'image.png')]);
  const report: string[] = [];
  for (const id of ids) {
    test.skip(!manifestHas(id), `${id} not in the manifest`);
    await page.getByTestId('segment-model').selectOption(id);
    await expect(page.getByTestId('segment-embedding')).toContainText('embedding', { timeout: 60_000 });
    const cases = fs.readdirSync(path.join(GOLD, id)).sort((a, b) => (a.includes('mask') ? 1 : 0) - (b.includes('mask') ? 1 : 0));
    const low: Record<string, number[][]> = {};
    for (const f of cases) {
      const g = JSON.parse(fs.readFileSync(path.join(GOLD, id, f), 'utf8'));
      const p = g.prompts;
      const prompt = {
        points: (p.points ?? []).map(([x, y]: number[], i: number) => ({ x, y, label: p.labels[i] })),
        box: p.box,
        maskInput: p.mask_from ? low[p.mask_from][p.mask_index] : undefined,
      };
      const d = await page.evaluate(async (pr) => {
        const s = (window as any).cxrStudio.store.getState();
        const r = await s.segmentDecodeLogits({ ...pr, maskInput: pr.maskInput ? Float32Array.from(pr.maskInput) : undefined });
        return r && { iou: r.iou, low: r.lowRes.map((a: Float32Array) => Array.from(a)), logits: r.logits.map((a: Float32Array) => Array.from(a)) };
      }, prompt);
      expect(d).toBeTruthy();
      low[g.case] = d!.low;
      const o = g.outputs as { low_res_logits: T; iou_predictions: T; mask_logits: T };
      const M = o.iou_predictions.dims[0];
      const m2 = o.low_res_logits.dims[1] * o.low_res_logits.dims[2];
      const plane = o.mask_logits.dims[1] * o.mask_logits.dims[2];
      let dl = 0, df = 0, di = 0;
      for (let k = 0; k < M; k++) {
        di = Math.max(di, Math.abs(d!.iou[k] - o.iou_predictions.data[k]));
        for (let i = 0; i < m2; i++) dl = Math.max(dl, Math.abs(d!.low[k][i] - o.low_res_logits.data[k * m2 + i]));
        for (let i = 0; i < plane; i++) df = Math.max(df, Math.abs(d!.logits[k][i] - o.mask_logits.data[k * plane + i]));
      }
      report.push(`${id}/${g.case}: low ${dl.toExponential(1)} full ${df.toExponential(1)} iou ${di.toExponential(1)}`);
      expect(Math.max(dl, df, di)).toBeLessThan(1e-4);
    }
  }
  console.log(report.join('\n'));
});
