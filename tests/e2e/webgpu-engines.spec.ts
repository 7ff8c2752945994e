import fs from 'node:fs';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { addFiles, kermanyImage, needs, needsModel, needsSharedData, REPO, watchErrors } from './helpers';

/**
 * Both onnxruntime-web WebGPU engines on SwiftShader (Chromium's CPU WebGPU), fp32, tiny fixtures only (SwiftShader is
 * ~100x slower than WASM):
 * - the build alone: each engine's ORT build from the app's /ort/ (what a worker imports) runs the tiny classifier and
 *   the tiny SAM encoder + prompt decoder on its WebGPU EP and matches the PyTorch goldens (tests/goldens) within 1e-4;
 * - through the app: the Runtime panel's engine setting restarts the model worker on that build, the Runtime panel
 *   says which build ran, the classifier's probabilities equal the WASM run's within 1e-4, and SAM's mask logits
 *   (GPU-resident embedding) equal PyTorch's (tests/segment-goldens) within 1e-4.
 * The timings of the same runs are printed by scripts/bench/webgpu-engines.ts, not asserted here.
 */
const ENGINES = [
  { engine: 'jsep', module: 'ort.min.mjs' },
  { engine: 'native', module: 'ort.webgpu.min.mjs' },
] as const;
const PAGE_RUNNER = fs.readFileSync(path.join(REPO, 'scripts/bench/webgpu-engines-page.js'), 'utf8');
const TOL = 1e-4;

interface GoldenTensor { dims: number[]; dtype: string; data: number[] }
interface Golden { inputs: Record<string, GoldenTensor>; outputs: Record<string, GoldenTensor> }
const golden = (rel: string) => JSON.parse(fs.readFileSync(path.join(REPO, 'tests/goldens', rel), 'utf8')) as Golden;
const GRAPHS = [
  { name: 'tiny-vit-classifier', url: '/models/tiny-vit-classifier/model.onnx', golden: 'tiny-vit-classifier/model.json' },
  { name: 'tiny-sam encoder', url: '/models/tiny-sam/image_encoder.onnx', golden: 'tiny-sam/image_encoder.json' },
  { name: 'tiny-sam decoder (box)', url: '/models/tiny-sam/prompt_decoder.onnx', golden: 'tiny-sam/prompt_decoder_box.json' },
  { name: 'tiny-sam decoder (points + mask)', url: '/models/tiny-sam/prompt_decoder.onnx', golden: 'tiny-sam/prompt_decoder_points_mask.json' },
];

async function hasAdapter(page: Page): Promise<boolean> {
  return page.evaluate(async () => !!(await (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu?.requestAdapter()));
}

/** The app's state through the test build's hook. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const state = (page: Page) => page.evaluate(() => (window as any).cxrStudio.store.getState() as any);

/**
 * The tiny SAM prompt decoder's point and box embedding is a random Fourier feature map, sin/cos of the prompt
 * coordinates. WGSL's sin/cos on SwiftShader are off by up to 1.9e-4 even for |x| <= pi (measured with a Sin/Cos
 * graph: both builds alike, WASM 1e-7), which becomes 2.8e-4 (box) and 2.0e-3 (points + mask input) in the decoder's
 * logits, for both engines alike. So the decoder's bound against PyTorch is 5e-3 on SwiftShader; the two engines must
 * still agree with each other within 1e-4, and every other graph matches PyTorch within 1e-4.
 */
const SWIFTSHADER_SINCOS_TOL = 5e-3;

test('both builds alone: the tiny classifier and SAM graphs match PyTorch, and each other within 1e-4', async ({ context }) => {
  test.setTimeout(600_000);
  for (const id of ['tiny-vit-classifier', 'tiny-sam']) needsModel(id);
  const graphs = GRAPHS.map((g) => ({ ...g, gold: golden(g.golden) }));
  const results: Record<string, Record<string, number[]>> = {};
  const report: string[] = [];
  const diffs: { what: string; d: number; tol: number }[] = [];
  for (const { engine, module } of ENGINES) {
    // A fresh page per build: one ORT instance per page, as one per worker in the app.
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto('/');
    expect(await hasAdapter(page), 'this Chromium has a WebGPU adapter (--enable-unsafe-webgpu)').toBe(true);
    const spec = { module, ep: 'webgpu', threads: 1, warm: 0, graphs: graphs.map((g) => ({ name: g.name, url: g.url, feeds: g.gold.inputs })) };
    const res = (await page.evaluate(`${PAGE_RUNNER}(${JSON.stringify(spec)})`)) as {
      adapter: { architecture: string };
      webgpuDevice: boolean;
      graphs: { name: string; outputs: Record<string, number[]> }[];
    };
    expect(res.adapter.architecture).toBe('swiftshader');
    // The WebGPU EP really ran: the build exposes the GPUDevice it created (both builds set env.webgpu.device).
    expect(res.webgpuDevice).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
    for (const [i, g] of graphs.entries()) {
      for (const [name, want] of Object.entries(g.gold.outputs)) {
        const got = res.graphs[i].outputs[name];
        expect(got, `${engine} ${g.name}: output ${name}`).toBeTruthy();
        expect(got.length).toBe(want.data.length);
        let d = 0;
        for (let k = 0; k < got.length; k++) d = Math.max(d, Math.abs(got[k] - want.data[k]));
        const tol = g.name.includes('decoder') ? SWIFTSHADER_SINCOS_TOL : TOL;
        report.push(`${engine} ${g.name} ${name}: max |ORT - PyTorch| = ${d.toExponential(1)} (bound ${tol})`);
        diffs.push({ what: `${engine} ${g.name} ${name} vs PyTorch`, d, tol });
        results[engine] ??= {};
        results[engine][`${g.name} ${name}`] = got;
      }
    }
  }
  for (const [k, a] of Object.entries(results.jsep)) {
    const b = results.native[k];
    const d = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    report.push(`jsep vs native ${k}: max diff ${d.toExponential(1)}`);
    diffs.push({ what: `jsep vs native ${k}`, d, tol: TOL });
  }
  console.log(report.join('\n'));
  for (const { what, d, tol } of diffs) expect(d, what).toBeLessThan(tol);
});

for (const { engine, module } of ENGINES) {
  test.describe(`WebGPU engine ${engine} (SwiftShader)`, () => {
    test(`in the app: the setting loads ${module} in the classifier worker, probabilities = WASM's within ${TOL}`, async ({ page }) => {
      test.setTimeout(300_000);
      needsModel('tiny-vit-classifier');
      needsSharedData();
      const errors = watchErrors(page);
      const ortLoads: string[] = [];
      page.on('request', (r) => {
        const m = /\/ort\/(ort\.[\w.]+\.mjs|[\w.-]+\.wasm)$/.exec(new URL(r.url()).pathname);
        if (m) ortLoads.push(m[1]);
      });
      // Under the app's Content-Security-Policy (vite.config.ts), as in page-guard.spec.ts: no violation, page or worker.
      const cspConsole: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy|Content-Security-Policy/i.test(m.text())) cspConsole.push(m.text());
      });
      await page.addInitScript(() => {
        const w = window as unknown as { __csp: string[] };
        w.__csp = [];
        document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
      });
      await page.goto('/');
      await expect(page.getByTestId('dropzone')).toBeVisible();
      expect(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')).toContain("script-src 'self' 'wasm-unsafe-eval'");
      expect(await hasAdapter(page), 'this Chromium has a WebGPU adapter').toBe(true);
      await page.getByTestId('webgpu-engine-select').selectOption(engine);
      await page.getByTestId('backend-select').selectOption('webgpu');
      await expect(page.getByTestId('classifier-select').locator('option[value="tiny-vit-classifier"]')).toHaveCount(1);
      await page.getByTestId('classifier-select').selectOption('tiny-vit-classifier');
      await addFiles(page, [kermanyImage('NORMAL', 0)]);
      await expect(page.getByTestId('classification-result')).toBeVisible({ timeout: 240_000 });
      const runtime = page.getByTestId('runtime-tiny-vit-classifier');
      await expect(runtime.getByTestId('runtime-backend')).toHaveText('webgpu');
      await expect(runtime.getByTestId('runtime-engine')).toHaveAttribute('data-engine', engine);
      await expect(runtime.getByTestId('runtime-reasons')).toContainText(`WebGPU engine: ${engine === 'jsep' ? 'JSEP' : 'native WebGPU EP'}, chosen in settings`);
      await expect(runtime.getByTestId('runtime-reasons')).not.toContainText('fell back');
      // One build in the worker: its module and its own wasm, never the other engine's.
      const other = ENGINES.find((e) => e.engine !== engine)!.module;
      expect(ortLoads).toContain(module);
      expect(ortLoads).not.toContain(other);
      // Probabilities and the attention-rollout heatmap (every attention map of the graph goes into it).
      const result = async () => {
        const s = await state(page);
        const c = s.images.find((i: { id: string }) => i.id === s.currentId).classification;
        return { values: [...c.probabilities, ...c.heatmap.data] as number[], report: s.models['tiny-vit-classifier'].report };
      };
      const gpu = await result();
      expect(gpu.report.backend).toBe('webgpu');
      // The same image on WASM (a native worker is restarted on the precached JSEP build: WASM needs no WebGPU engine).
      await page.getByTestId('backend-select').selectOption('wasm');
      await expect(runtime.getByTestId('runtime-backend')).toHaveText('wasm', { timeout: 120_000 });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      await page.evaluate(() => (window as any).cxrStudio.store.getState().classifyCurrent());
      const wasm = await result();
      expect(wasm.report.backend).toBe('wasm');
      expect(wasm.report.lastInferenceMs).toBeGreaterThan(0);
      expect(gpu.values.length).toBeGreaterThan(2);
      expect(gpu.values).toHaveLength(wasm.values.length);
      const d = Math.max(...gpu.values.map((p, k) => Math.abs(p - wasm.values[k])));
      console.log(`[parity] app classifier, ${engine} WebGPU vs WASM: max |diff| over ${gpu.values.length} probabilities + heatmap values = ${d.toExponential(1)}`);
      expect(d).toBeLessThan(TOL);
      expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
      expect(cspConsole).toEqual([]);
      // The setting survives a reload.
      await page.reload();
      await expect(page.getByTestId('webgpu-engine-select')).toHaveValue(engine);
      expect(errors).toEqual([]);
    });
  });
}

// JSEP's SAM on WebGPU runs in segment.spec.ts ('WebGPU (SwiftShader) runs the tiny fixture'); this is the native EP's,
// whose GPU-resident embedding path (env.webgpu.device + Tensor.fromGpuBuffer in lib/sam/engine.ts) differs in build.
test(`in the app: SAM on the native WebGPU EP with the GPU-resident embedding, mask logits = PyTorch within ${SWIFTSHADER_SINCOS_TOL}`, async ({ page }) => {
  const engine = 'native';
  test.setTimeout(420_000);
  needsModel('tiny-sam');
  const GOLD = path.join(REPO, 'tests/segment-goldens');
  needs(fs.existsSync(path.join(GOLD, 'tiny-sam/box.json')), 'tests/segment-goldens/tiny-sam/box.json');
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.getByTestId('dropzone')).toBeVisible();
  expect(await hasAdapter(page), 'this Chromium has a WebGPU adapter').toBe(true);
  await page.getByTestId('webgpu-engine-select').selectOption(engine);
  await page.getByTestId('backend-select').selectOption('webgpu');
  await page.getByRole('button', { name: 'Segment', exact: true }).click();
  await expect(page.getByTestId('segment-model').locator('option[value="tiny-sam"]')).toHaveCount(1);
  await page.getByTestId('segment-model').selectOption('tiny-sam');
  await addFiles(page, [path.join(GOLD, 'image.png')]);
  await expect(page.getByTestId('segment-status')).toContainText('on webgpu', { timeout: 240_000 });
  await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 240_000 });
  await expect(page.getByTestId('segment-resident')).toContainText('resident on the GPU');
  const g = JSON.parse(fs.readFileSync(path.join(GOLD, 'tiny-sam/box.json'), 'utf8'));
  const p = g.prompts;
  const prompt = { points: (p.points ?? []).map(([x, y]: number[], i: number) => ({ x, y, label: p.labels[i] })), box: p.box };
  const d = await page.evaluate(async (pr) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const r = await (window as any).cxrStudio.store.getState().segmentDecodeLogits(pr);
    return r && { iou: Array.from(r.iou as number[]), low: r.lowRes.map((a: Float32Array) => Array.from(a)), logits: r.logits.map((a: Float32Array) => Array.from(a)) };
  }, prompt);
  expect(d).toBeTruthy();
  const o = g.outputs as { low_res_logits: GoldenTensor; iou_predictions: GoldenTensor; mask_logits: GoldenTensor };
  const M = o.iou_predictions.dims[0];
  const m2 = o.low_res_logits.dims[1] * o.low_res_logits.dims[2];
  const plane = o.mask_logits.dims[1] * o.mask_logits.dims[2];
  let dl = 0, df = 0, di = 0;
  for (let k = 0; k < M; k++) {
    di = Math.max(di, Math.abs(d!.iou[k] - o.iou_predictions.data[k]));
    for (let i = 0; i < m2; i++) dl = Math.max(dl, Math.abs(d!.low[k][i] - o.low_res_logits.data[k * m2 + i]));
    for (let i = 0; i < plane; i++) df = Math.max(df, Math.abs(d!.logits[k][i] - o.mask_logits.data[k * plane + i]));
  }
  console.log(`[parity] app tiny-sam box on ${engine}: low ${dl.toExponential(1)} full ${df.toExponential(1)} iou ${di.toExponential(1)}`);
  expect(Math.max(dl, df, di)).toBeLessThan(SWIFTSHADER_SINCOS_TOL);
  // The Runtime panel is the Viewer's; the report behind it says which build ran.
  const report = (await state(page)).models['tiny-sam']?.report;
  expect(report?.backend).toBe('webgpu');
  expect(report?.engine).toBe(engine);
  expect(errors).toEqual([]);
});

// The SD pipeline's GPU-resident loop on the native EP: gpu-buffer outputs of the UNet feed the in-memory step graph and
// the next UNet step (lib/sd/engine.ts); generate.spec.ts covers the same on JSEP.
test('in the app: tiny-sd on the native WebGPU EP keeps the latents on the GPU and matches diffusers within 1e-3', async ({ page }) => {
  test.setTimeout(540_000); // SwiftShader compiles every WGSL shader on the CPU
  needsModel('tiny-sd');
  const gold = path.join(REPO, 'tests/goldens/tiny-sd/pipeline_lora_seed42.json');
  needs(fs.existsSync(gold), 'tests/goldens/tiny-sd/pipeline_lora_seed42.json');
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.getByTestId('dropzone')).toBeVisible();
  expect(await hasAdapter(page), 'this Chromium has a WebGPU adapter').toBe(true);
  await page.getByTestId('webgpu-engine-select').selectOption('native');
  await page.getByTestId('backend-select').selectOption('webgpu');
  await expect.poll(async () => (await state(page)).manifest?.models?.some((m: { id: string }) => m.id === 'tiny-sd'), { timeout: 60_000 }).toBe(true);
  const g = JSON.parse(fs.readFileSync(gold, 'utf8'));
  const w = await page.evaluate(async (meta) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const st = (window as any).cxrStudio.store.getState();
    const entry = st.manifest.models.find((m: { id: string }) => m.id === 'tiny-sd');
    // The files come from the model cache, as for a user: download first.
    if (!(await st.downloadModel('tiny-sd'))) throw new Error('tiny-sd download failed');
    const req = st.modelRequest(entry);
    const load = await st.workers.sd().load(req);
    if (!load.ok) throw new Error(load.message);
    const r = await st.workers.sd().generate(req, { prompt: meta.prompt, steps: meta.num_inference_steps, guidanceScale: meta.guidance_scale, seed: meta.seed, sides: ['lora'], returnImage: true });
    if (!r.ok) throw new Error(r.message);
    return { image: Array.from(r.value.images[0].image as Float32Array), backend: r.value.images[0].backend as string, report: load.value };
  }, g.meta);
  expect(w.backend).toBe('webgpu');
  expect(w.report.gpuResident).toBe(true);
  expect(w.report.fellBack).toBe(false);
  expect(w.image.length).toBe(g.outputs.image.data.length);
  const d = w.image.reduce((m: number, x: number, i: number) => Math.max(m, Math.abs(x - g.outputs.image.data[i])), 0);
  console.log(`[parity] app tiny-sd lora on the native WebGPU EP: max |image - diffusers| = ${d.toExponential(2)}`);
  expect(d).toBeLessThan(1e-3);
  expect(errors).toEqual([]);
});

test('native engine whose wasm cannot be fetched (offline before first use): the worker loads JSEP instead and says why', async ({ page }) => {
  test.setTimeout(240_000);
  needsModel('tiny-vit-classifier');
  needsSharedData();
  const errors = watchErrors(page);
  await page.context().route('**/ort/ort-wasm-simd-threaded.asyncify.wasm', (r) => r.abort('internetdisconnected'));
  await page.goto('/');
  await expect(page.getByTestId('dropzone')).toBeVisible();
  expect(await hasAdapter(page), 'this Chromium has a WebGPU adapter').toBe(true);
  await page.getByTestId('webgpu-engine-select').selectOption('native');
  await page.getByTestId('backend-select').selectOption('webgpu');
  await expect(page.getByTestId('classifier-select').locator('option[value="tiny-vit-classifier"]')).toHaveCount(1);
  await page.getByTestId('classifier-select').selectOption('tiny-vit-classifier');
  await addFiles(page, [kermanyImage('NORMAL', 0)]);
  await expect(page.getByTestId('classification-result')).toBeVisible({ timeout: 200_000 });
  const runtime = page.getByTestId('runtime-tiny-vit-classifier');
  await expect(runtime.getByTestId('runtime-backend')).toHaveText('webgpu');
  await expect(runtime.getByTestId('runtime-engine')).toHaveAttribute('data-engine', 'jsep');
  await expect(runtime.getByTestId('runtime-reasons')).toContainText('the native WebGPU EP build failed to load');
  expect(errors).toEqual([]);
});
