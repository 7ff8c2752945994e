import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { addFiles, CLASSIFIER_ID, DICOM_DIR, KERMANY, needs, needsModel, needsSharedFile, openApp, REPO, SHARED, shot, waitForClassification, watchErrors } from './helpers';

/**
 * The out-of-distribution badge and the second heatmap method in the real app (pneumonia-vit, WASM). The images and
 * their expected verdicts come from tests/goldens/pneumonia-vit/ood-images.json (scores by the Python fit).
 */
const ADULT = path.join(SHARED, 'data/cxr-lung-masks/images/00870a9c.jpg');
const PEDIATRIC = path.join(KERMANY, 'test/PNEUMONIA/person99_bacteria_473.jpeg');
/** The abdomen/pelvis radiograph of ../shared (a DICOM, modality OT) that v2's attention-only score ranked below a NORMAL test image. */
const NON_CHEST_DICOM = path.join(DICOM_DIR, 'non_cxr_control_OT_512.dcm');
const PYTHON = path.join(REPO, '.venv/bin/python');

/**
 * Non-chest images written at test time from packages that ship them (nothing copied into the repository):
 * scikit-image's `coffee` photograph (CC0, Rachel Michetti) and pydicom's CT_small.dcm (a CT slice from NEMA's WG04
 * sample set, pydicom test data, MIT).
 */
function packageImages(dir: string): string[] {
  const coffee = path.join(dir, 'coffee.png');
  const ct = path.join(dir, 'CT_small.dcm');
  execFileSync(PYTHON, ['-c', 'import sys, shutil, skimage.data as d; from PIL import Image; from pydicom.data import get_testdata_file; Image.fromarray(d.coffee()).save(sys.argv[1]); shutil.copyfile(get_testdata_file("CT_small.dcm", download=False), sys.argv[2])', coffee, ct]);
  return [coffee, ct];
}
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
    await expect(page.getByTestId('prediction-ood')).toHaveCount(0);
    expect(await page.getByTestId('predicted-label').evaluate((el) => parseFloat(getComputedStyle(el).fontSize))).toBeGreaterThanOrEqual(20);
    expect(errors).toEqual([]);
  });

  test('non-chest images (a DICOM of the abdomen, a photograph, a CT slice) are flagged far above the threshold; the classification is small and greyed beside the badge', async ({ page }) => {
    test.setTimeout(360_000);
    needsSharedFile(NON_CHEST_DICOM);
    needs(fs.existsSync(PYTHON), `${PYTHON} (scikit-image, pydicom: npm run setup) to write the package images`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-nonchest-'));
    const errors = watchErrors(page);
    try {
      for (const file of [NON_CHEST_DICOM, ...packageImages(dir)]) {
        await openApp(page, { backend: 'wasm', classifier: CLASSIFIER_ID });
        await addFiles(page, [file]);
        await waitForClassification(page, 120_000);
        await expect(page.getByTestId('ood-badge'), path.basename(file)).toHaveText(`⚠ ${BADGE}`);
        // The badge is the headline; the classification sits beside it, small and greyed: no large label at all.
        const row = page.getByTestId('prediction-ood');
        await expect(row.getByTestId('ood-badge')).toBeVisible();
        await expect(row.getByTestId('predicted-label')).toHaveText(/^(NORMAL|PNEUMONIA)$/);
        await expect(page.locator('.result .pred')).toHaveCount(0);
        // The image strip tags it OOD rather than with a coloured label.
        await expect(page.getByRole('list', { name: 'Opened images' }).getByTestId('strip-ood')).toHaveText('OOD');
        const look = await row.getByTestId('predicted-label').evaluate((el) => {
          const cs = getComputedStyle(el);
          const badge = el.closest('[data-testid="prediction-ood"]')!.querySelector('[data-testid="ood-badge"]')!;
          return { fontPx: parseFloat(cs.fontSize), color: cs.color, afterBadge: !!(badge.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) };
        });
        expect(look.fontPx, path.basename(file)).toBeLessThan(16);
        expect(look.color).toBe('rgb(148, 163, 184)'); // --muted
        expect(look.afterBadge).toBe(true);
        // "Far above": at least 1.3 × the threshold (every Kermany test image stays below 1.0; their maximum is in the README's OOD table).
        const m = /OOD score ([\d.]+) \(flagged above ([\d.]+)\)/.exec(await page.getByTestId('classification-result').innerText());
        expect(m, 'the result line states the OOD score and threshold').not.toBeNull();
        const [score, threshold] = [Number(m![1]), Number(m![2])];
        console.log(`${path.basename(file)}: OOD score ${score} / threshold ${threshold} = ${(score / threshold).toFixed(2)}`);
        expect(score / threshold, path.basename(file)).toBeGreaterThan(1.3);
        await shot(page, `ood-nonchest-${path.basename(file)}`);
        await page.reload();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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
