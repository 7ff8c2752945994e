import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { expect, test, type Page } from '@playwright/test';
import { manifestHas, openApp, REPO, shot, smallClassifierId, watchErrors, logTiming } from './helpers';

/**
 * The Generate gallery in Chromium with the tiny-sd fixture (random weights): base and LoRA side by side through the
 * real generate worker on WASM and on WebGPU (SwiftShader), parity with diffusers, cancel, export, history across
 * reloads, and the size check refusing SD 1.5's real sizes before any download.
 */
const MODEL = 'tiny-sd';
const GOLDENS = path.join(REPO, 'tests/goldens/tiny-sd');

async function openGenerate(page: Page, backend: 'wasm' | 'webgpu') {
  await openApp(page, { backend, classifier: smallClassifierId() });
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByTestId('gen-model').locator(`option[value="${MODEL}"]`)).toHaveCount(1);
  await page.getByTestId('gen-model').selectOption(MODEL);
}

async function setForm(page: Page, f: { steps?: number; seed?: number; seeds?: number; guidance?: number; prompt?: string }) {
  if (f.prompt !== undefined) await page.getByTestId('gen-prompt').fill(f.prompt);
  if (f.steps !== undefined) await page.getByTestId('gen-steps').fill(String(f.steps));
  if (f.seed !== undefined) await page.getByTestId('gen-seed').fill(String(f.seed));
  if (f.seeds !== undefined) await page.getByTestId('gen-nseeds').fill(String(f.seeds));
  if (f.guidance !== undefined) await page.getByTestId('gen-guidance').fill(String(f.guidance));
}

/** The worker's float image for a golden's prompt/seed/steps/guidance (the gallery keeps 8-bit PNGs). */
async function workerImage(page: Page, g: { prompt: string; seed: number; steps: number; guidance: number; side: 'base' | 'lora' }) {
  return page.evaluate(async ({ g, MODEL }) => {
    type Engine = { generate(...a: unknown[]): Promise<{ ok: boolean; message?: string; value?: { images: { image: Float32Array; backend: string }[] } }> };
    const store = (window as unknown as { cxrStudio: { store: { getState(): { manifest: { models: { id: string }[] }; modelRequest(e: unknown): unknown; workers: { sd(): Engine } } } } }).cxrStudio.store;
    const st = store.getState();
    const req = st.modelRequest(st.manifest.models.find((m) => m.id === MODEL));
    const r = await st.workers.sd().generate(req, { prompt: g.prompt, steps: g.steps, guidanceScale: g.guidance, seed: g.seed, sides: [g.side], returnImage: true });
    if (!r.ok) throw new Error(r.message);
    return { image: Array.from(r.value!.images[0].image), backend: r.value!.images[0].backend };
  }, { g, MODEL });
}

function maxAbs(a: number[], b: number[]) {
  expect(a.length).toBe(b.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

test.describe('generate gallery', () => {
  test.skip(!manifestHas(MODEL), `${MODEL} is not in the model manifest`);

  test('WASM: base and LoRA side by side, scored and labelled, parity with diffusers, export, history across reloads, delete', async ({ page }, info) => {
    test.setTimeout(300_000);
    const errors = watchErrors(page);
    await openGenerate(page, 'wasm');
    await setForm(page, { steps: 4, seed: 42, seeds: 2, guidance: 1, prompt: 'a chest X-ray showing pneumonia' });
    const t0 = Date.now();
    await page.getByTestId('gen-run').click();
    const run = page.getByTestId('gallery-run').first();
    await expect(run).toHaveAttribute('data-status', 'done', { timeout: 240_000 });
    logTiming(info, 'tiny-sd 2 seeds x (base + LoRA), 4 steps, WASM, incl. download + sessions', Date.now() - t0);
    const cells = run.getByTestId('gallery-image');
    await expect(cells).toHaveCount(4);
    expect(await cells.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-seed')}/${e.getAttribute('data-side')}`))).toEqual(['42/base', '42/lora', '43/base', '43/lora']);
    await expect(run.getByTestId('gallery-random')).toHaveCount(4);
    await expect(run.getByTestId('gallery-score')).toHaveCount(4);
    await expect(run.getByTestId('gallery-score').first()).toContainText(/P\(PNEUMONIA\) \d\.\d{3}/);
    await expect(page.getByTestId('gen-backend')).toHaveText('wasm');
    await expect(page.getByTestId('gen-layout')).toContainText('one UNet');
    await shot(page, 'generate-wasm-gallery');

    // the gallery's 8-bit images = diffusers' images (±1 level); the worker's float image within 1e-3
    const urls = await cells.evaluateAll((els) => els.map((e) => e.querySelector('img')!.getAttribute('src')!));
    for (const [i, f] of [[0, 'pipeline_base_seed42.json'], [1, 'pipeline_lora_seed42.json']] as const) {
      const g = JSON.parse(fs.readFileSync(path.join(GOLDENS, f), 'utf8'));
      const png = PNG.sync.read(Buffer.from(urls[i].split(',')[1], 'base64'));
      const [, , H, W] = g.outputs.image.dims;
      let worst = 0;
      for (let c = 0; c < 3; c++) for (let p = 0; p < H * W; p++) worst = Math.max(worst, Math.abs(png.data[p * 4 + c] - Math.round(g.outputs.image.data[c * H * W + p] * 255)));
      expect(worst).toBeLessThanOrEqual(1);
      const w = await workerImage(page, { prompt: g.meta.prompt, seed: g.meta.seed, steps: g.meta.num_inference_steps, guidance: g.meta.guidance_scale, side: g.meta.side });
      const d = maxAbs(w.image, g.outputs.image.data);
      console.log(`[parity] browser ${w.backend} ${f}: max |image - diffusers| = ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-3);
    }
    const cfg = JSON.parse(fs.readFileSync(path.join(GOLDENS, 'pipeline_base_cfg_seed7.json'), 'utf8'));
    const wc = await workerImage(page, { prompt: cfg.meta.prompt, seed: 7, steps: cfg.meta.num_inference_steps, guidance: cfg.meta.guidance_scale, side: 'base' });
    console.log(`[parity] browser wasm CFG: max |image - diffusers| = ${maxAbs(wc.image, cfg.outputs.image.data).toExponential(2)}`);
    expect(maxAbs(wc.image, cfg.outputs.image.data)).toBeLessThan(1e-3);

    // export: grid PNG + JSON record
    const downloads: { name: string; body: Buffer }[] = [];
    page.on('download', async (d) => downloads.push({ name: d.suggestedFilename(), body: fs.readFileSync((await d.path())!) }));
    await run.getByTestId('gallery-export').click();
    await expect.poll(() => downloads.length, { timeout: 20_000 }).toBe(2);
    const json = downloads.find((d) => d.name.endsWith('.json'))!;
    const grid = downloads.find((d) => d.name.endsWith('.png'))!;
    const rec = JSON.parse(json.body.toString('utf8'));
    expect(rec).toMatchObject({ prompt: 'a chest X-ray showing pneumonia', seeds: [42, 43], steps: 4, guidance_scale: 1, random_weights: true, model: { id: MODEL, unet_layout: 'scaled' } });
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO, 'public/models/manifest.json'), 'utf8'));
    const want = manifest.models.find((m: { id: string }) => m.id === MODEL).variants.fp32.files.find((f: { role: string }) => f.role === 'unet_scaled').sha256;
    expect(rec.model.files.find((f: { role: string }) => f.role === 'unet_scaled').sha256).toBe(want);
    expect(rec.images).toHaveLength(4);
    expect(rec.images[0].score.positiveProbability).toBeGreaterThanOrEqual(0);
    const gp = PNG.sync.read(grid.body);
    expect(gp.width).toBeGreaterThan(2 * 32);
    expect(gp.height).toBeGreaterThan(2 * 32);
    expect(rec.images.map((i: { timesteps: number[] }) => i.timesteps)).toEqual(new Array(4).fill([999, 759, 499, 259]));

    // the same request through `npm run generate` (Node, same service and engines) writes the same record: only the
    // creation time, the grid's file name and the timings differ; scores agree to float precision
    const cliOut = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gen-parity-'));
    execFileSync('npx', ['tsx', 'app/cli/generate.ts', '--model', MODEL, '--prompt', 'a chest X-ray showing pneumonia', '--seed', '42', '--steps', '4', '--n', '2', '--side', 'both', '--guidance', '1', '--classifier', smallClassifierId(), '--out', cliOut, '--threads', '1'], { cwd: REPO, stdio: 'pipe' });
    const cli = JSON.parse(fs.readFileSync(path.join(cliOut, 'generation.json'), 'utf8'));
    type Rec = { created?: string; grid?: string; images: { stepMs?: number[]; totalMs?: number; score?: { positiveProbability: number } }[] };
    const probs = (r: Rec) => r.images.map((i) => i.score?.positiveProbability ?? NaN);
    const norm = (r: Rec) => ({ ...r, created: undefined, grid: undefined, images: r.images.map((i) => ({ ...i, stepMs: undefined, totalMs: undefined, score: i.score && { ...i.score, positiveProbability: undefined } })) });
    expect(norm(rec)).toEqual(norm(cli));
    probs(rec).forEach((p, i) => expect(Math.abs(p - probs(cli)[i])).toBeLessThan(1e-4));

    // history survives a reload; delete removes it (also after another reload)
    await page.reload();
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(page.getByTestId('gallery-run')).toHaveCount(1);
    await expect(page.getByTestId('gallery-run').first().getByTestId('gallery-image')).toHaveCount(4);
    await expect(page.getByTestId('gallery-run').first().getByTestId('gallery-random')).toHaveCount(4);
    // one IndexedDB key per run (a save never rewrites the whole history)
    const runKeys = () =>
      page.evaluate(
        () =>
          new Promise<string[]>((resolve, reject) => {
            const open = indexedDB.open('keyval-store');
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
              const req = open.result.transaction('keyval').objectStore('keyval').getAllKeys();
              req.onsuccess = () => resolve((req.result as string[]).filter((k) => String(k).startsWith('cxr-gallery-run')));
              req.onerror = () => reject(req.error);
            };
          }),
      );
    expect(await runKeys()).toHaveLength(1);
    await shot(page, 'generate-history-after-reload');
    await page.getByTestId('gallery-delete').first().click();
    await expect(page.getByTestId('gallery-empty')).toBeVisible();
    await page.reload();
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(page.getByTestId('gallery-empty')).toBeVisible();
    expect(errors).toEqual([]);
  });

  test('cancel mid-generation stops between steps and keeps the images already made', async ({ page }) => {
    test.setTimeout(240_000);
    const errors = watchErrors(page);
    await openGenerate(page, 'wasm');
    await setForm(page, { steps: 8, seed: 1, seeds: 8 });
    await page.getByTestId('gen-run').click();
    // any seed and side: on a fast machine seed 1's base side (~0.8 s) can be over before the first poll
    await expect(page.getByTestId('gen-progress')).toContainText(/seed \d+ · [^·]+ · step \d\/8/, { timeout: 120_000 });
    await page.getByTestId('gen-cancel').click();
    const run = page.getByTestId('gallery-run').first();
    await expect(run).toHaveAttribute('data-status', 'cancelled', { timeout: 60_000 });
    // tiny-sd steps take ~0.1 s: the cancel lands between two UNet steps or, if that seed just finished, before the next seed
    await expect(run.getByTestId('gallery-run-status')).toContainText(/Cancelled: (generation cancelled before step \d of 8|before seed \d)/);
    console.log(`[cancel] ${await run.getByTestId('gallery-run-status').innerText()}`);
    const n = await run.getByTestId('gallery-image').count();
    expect(n).toBeLessThan(16); // 8 seeds x (base + LoRA) when not cancelled
    // the app keeps working: a new run completes
    await setForm(page, { steps: 2, seeds: 1 });
    await page.getByTestId('gen-run').click();
    await expect(page.getByTestId('gallery-run').first()).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
    expect(errors).toEqual([]);
  });

  test('Cancel while the model downloads stops the download; nothing is cached and the next run works', async ({ page }) => {
    test.setTimeout(240_000);
    const errors = watchErrors(page);
    // the model's files answer slowly, so the Cancel lands during the download
    await page.route(`**/models/${MODEL}/**`, async (route) => {
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue().catch(() => undefined); // the request may have been aborted by the Cancel meanwhile
    });
    await openGenerate(page, 'wasm');
    await setForm(page, { steps: 2, seed: 1, seeds: 1 });
    await page.getByTestId('gen-run').click();
    await expect.poll(() => page.evaluate(() => (window as any).cxrStudio.store.getState().download?.modelId ?? null), { timeout: 60_000 }).toBe(MODEL);
    await page.getByTestId('gen-cancel').click();
    await expect(page.getByTestId('gen-error')).toContainText('Cancelled while preparing the model', { timeout: 60_000 });
    await expect(page.getByTestId('gen-run')).toBeEnabled();
    // the model cache's own listing: fewer than the variant's 7 files (the download stopped before the end)
    const cached = await page.evaluate((m) => (window as any).cxrStudio.store.getState().stored.filter((f: { modelId: string }) => f.modelId === m).length, MODEL);
    console.log(`[cancel-download] ${cached} of 7 files cached when the download stopped`);
    expect(cached).toBeLessThan(7);
    await page.unroute(`**/models/${MODEL}/**`);
    await page.getByTestId('gen-run').click();
    await expect(page.getByTestId('gallery-run').first()).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
    expect(errors).toEqual([]);
  });

  test('WebGPU (SwiftShader): base and LoRA side by side with the GPU-resident loop, parity with diffusers', async ({ page }, info) => {
    test.setTimeout(540_000); // SwiftShader compiles every WGSL shader on the CPU: 2–3 min on a busy 2-core machine
    const errors = watchErrors(page);
    await openGenerate(page, 'webgpu');
    const hasGpu = await page.evaluate(async () => !!(await (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter()));
    test.skip(!hasGpu, 'this Chromium has no WebGPU adapter');
    await setForm(page, { steps: 2, seed: 3, seeds: 1 });
    const t0 = Date.now();
    await page.getByTestId('gen-run').click();
    const run = page.getByTestId('gallery-run').first();
    await expect(run).toHaveAttribute('data-status', 'done', { timeout: 420_000 });
    logTiming(info, 'tiny-sd 1 seed x (base + LoRA), 2 steps, WebGPU SwiftShader', Date.now() - t0);
    await expect(page.getByTestId('gen-backend')).toHaveText('webgpu');
    await expect(page.getByTestId('gen-report')).toContainText('yes (gpu-buffer between steps)');
    await expect(run.getByTestId('gallery-image')).toHaveCount(2);
    await expect(run.getByTestId('gallery-random')).toHaveCount(2);
    await shot(page, 'generate-webgpu-gallery');
    const g = JSON.parse(fs.readFileSync(path.join(GOLDENS, 'pipeline_lora_seed42.json'), 'utf8'));
    const w = await workerImage(page, { prompt: g.meta.prompt, seed: 42, steps: 4, guidance: 1, side: 'lora' });
    expect(w.backend).toBe('webgpu');
    const d = maxAbs(w.image, g.outputs.image.data);
    console.log(`[parity] browser webgpu lora: max |image - diffusers| = ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-3);
    expect(errors).toEqual([]);
  });

  test('SD 1.5 at its real sizes is refused with the numbers before any download', async ({ page }) => {
    const entry = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/fixtures/sd15-sizes.json'), 'utf8'));
    const requested: string[] = [];
    // serve the app's manifest with the SD 1.5-sized entry added (a test server for the manifest; no model file exists)
    await page.route('**/models/manifest.json', async (route) => {
      const res = await route.fetch();
      const m = await res.json();
      m.models.push(entry);
      await route.fulfill({ response: res, json: m });
    });
    page.on('request', (r) => {
      if (r.url().includes('/sd15-sizes/')) requested.push(r.url());
    });
    await openApp(page, { backend: 'wasm' });
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByTestId('gen-model').selectOption('sd15-sizes');
    await page.getByTestId('gen-run').click();
    await expect(page.getByTestId('gen-error')).toContainText(/Refused before downloading: .*needs 3\.\d GB of weights \(text_encoder \+ unet_scaled \+ vae_decoder\) \+ ~[\d.]+ [MG]B of activations = [\d.]+ GB, more than the 4 GiB a WebAssembly heap can address/);
    await shot(page, 'generate-sd15-refused');
    expect(requested).toEqual([]);
  });
});
