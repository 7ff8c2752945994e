/**
 * Models from the Hub in a real browser (issue 20.4). scripts/hub-server.mjs serves the fixture repos of
 * `cxr-export hub-fixtures` (tests/.hub-fixtures: tiny random CLIP, SigLIP, SAM, ViT in the Optimum / transformers.js
 * layout, with PyTorch goldens). The page reaches it as https://hub.cxr.test (Playwright routes that origin to the
 * local server: the app's CSP allows https: model origins only); every other origin is refused and recorded, so the
 * tests also show that transformers.js and ORT fetch nothing from a CDN. Each repo is added by id in the Models view,
 * run in its family's view, and compared with the goldens (fp32, 1e-4). A wrong architecture, a missing file, a
 * sha256 mismatch and an offline reload of a cached Hub model are each covered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { createHubServer, type RunningHubServer } from '../../scripts/hub-server.mjs';
import { addFiles, openApp, REPO, watchErrors } from './helpers';
import { ensureHubFixtures } from '../unit/helpers/hub-fixtures';

const ROOT = path.join(REPO, 'tests', '.hub-fixtures');
const GOLDENS = path.join(ROOT, '_goldens');
const HUB = 'https://hub.cxr.test';
const OWNER = 'cxr-fixtures';
let hub: RunningHubServer;

interface T { dims: number[]; data: number[] }
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const golden = (name: string): any => JSON.parse(fs.readFileSync(path.join(GOLDENS, `${name}.json`), 'utf8'));
const png = (name: string) => ({ name, mimeType: 'image/png', buffer: fs.readFileSync(path.join(GOLDENS, name)) });
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const control = (body: object) => fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify(body) });
const served = async () => (await (await fetch(`${hub.url}/_requests`)).json()) as { path: string; status: number }[];

test.beforeAll(async () => {
  test.setTimeout(300_000); // the fixtures are (re)generated when missing or stale: 2-3 min
  if (!ensureHubFixtures()) throw new Error(`${ROOT} cannot be written without PyTorch in .venv (npm run setup)`);
  hub = await createHubServer({ root: ROOT, port: 0 });
});
test.afterAll(async () => {
  await hub?.close();
});
test.beforeEach(async () => {
  await control({ offline: false, corrupt: [], hide: [] });
  await fetch(`${hub.url}/_requests`, { method: 'DELETE' });
});

/** Route the Hub origin to the local server; refuse (and record) every request that leaves 127.0.0.1. */
async function offlineExceptHub(context: BrowserContext): Promise<string[]> {
  const external: string[] = [];
  await context.route(
    (u) => u.hostname !== '127.0.0.1' && u.hostname !== 'localhost',
    (route) => {
      external.push(route.request().url());
      return route.abort('internetdisconnected');
    },
  );
  await context.route(`${HUB}/**`, async (route) => {
    const u = new URL(route.request().url());
    try {
      const response = await route.fetch({ url: `${hub.url}${u.pathname}${u.search}` });
      await route.fulfill({ response });
    } catch {
      await route.abort('internetdisconnected'); // the server dropped the socket: offline
    }
  });
  return external;
}

/** The app on WASM, the Hub base set to the routed origin, fp32 chosen for the given Hub ids (the goldens are fp32). */
async function open(page: Page, ids: string[]): Promise<void> {
  await page.addInitScript(
    ({ base, ids }) => {
      if (sessionStorage.getItem('hub-spec-init')) return; // a reload keeps what the test did
      sessionStorage.setItem('hub-spec-init', '1');
      localStorage.setItem('cxr-hub-base', base);
      localStorage.setItem('cxr-studio.settings.v1', JSON.stringify({ backend: 'wasm', modelSource: { kind: 'app' }, dtypes: Object.fromEntries(ids.map((id) => [id, 'fp32'])) }));
    },
    { base: HUB, ids },
  );
  await openApp(page);
}

async function addFromHub(page: Page, repo: string): Promise<void> {
  await page.getByRole('button', { name: 'Models', exact: true }).click();
  await page.getByTestId('hub-repo-input').fill(`hf:${OWNER}/${repo}`);
  await page.getByTestId('hub-add').click();
  await expect(page.getByTestId('hub-add-state')).toHaveAttribute('data-status', /added|error/, { timeout: 60_000 });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const state = (page: Page, fn: (s: any) => unknown) => page.evaluate(fn as never);

test('CLIP, SigLIP and a ViT classifier added by id run in the Viewer as PyTorch does; no request leaves the machine', async ({ page, context }) => {
  test.setTimeout(300_000);
  const errors = watchErrors(page);
  const external = await offlineExceptHub(context);
  const ids = ['tiny-clip', 'tiny-siglip', 'tiny-vit-cxr'].map((n) => `hf:${OWNER}/${n}`);
  await open(page, ids);
  for (const [name, which] of [['tiny-clip', 'clip'], ['tiny-siglip', 'clip'], ['tiny-vit-cxr', 'classifier']] as const) {
    await addFromHub(page, name);
    await expect(page.getByTestId('hub-add-state')).toHaveAttribute('data-status', 'added');
    const id = `hf:${OWNER}/${name}`;
    const row = page.getByTestId(`model-row-${id}`);
    await expect(row.getByTestId('weights-badge')).toContainText('external model, weights not checked by this project');
    await expect.poll(() => page.evaluate(([f, i]) => (window as any).cxrStudio.store.getState().chosenModelId[f] === i, [which, id] as const)).toBe(true); // eslint-disable-line @typescript-eslint/no-explicit-any
    if (which === 'clip') {
      const g = golden(name);
      await page.getByRole('button', { name: 'Viewer', exact: true }).click();
      if ((await page.getByRole('list', { name: 'Opened images' }).getByRole('listitem').count()) === 0) await addFiles(page, [png(g.image)]);
      await expect(page.getByRole('list', { name: 'Opened images' }).getByRole('listitem')).toHaveCount(1, { timeout: 60_000 });
      const z = await page.evaluate(async (prompts: string[]) => {
        const store = (window as any).cxrStudio.store; // eslint-disable-line @typescript-eslint/no-explicit-any
        store.getState().setPrompts(prompts.map((p) => ({ label: p, prompts: [p] })));
        await store.getState().zeroShotCurrent();
        const s = store.getState();
        const r = s.images.find((x: { id: string }) => x.id === s.currentId).zeroShot;
        return { modelId: r.modelId as string, probs: r.probabilities as Record<string, number>, sims: r.similarities as Record<string, number>, emb: Array.from(r.imageEmbedding as Float32Array) };
      }, g.prompts);
      expect(z.modelId).toBe(id);
      if (name === 'tiny-clip') {
        const dp = maxDiff(g.prompts.map((p: string) => z.probs[p]), g.outputs.probs.data);
        const de = maxDiff(z.emb, (g.outputs['vision_model.image_embeds'] as T).data);
        console.log(`hub tiny-clip in Chromium vs PyTorch: max |Δprob| ${dp.toExponential(2)}, max |Δimage_embeds| ${de.toExponential(2)}`);
        expect(dp).toBeLessThan(1e-4);
        expect(de).toBeLessThan(1e-4);
      } else {
        const img = (g.outputs.image_embeds as T).data;
        const cos = g.prompts.map((_: string, i: number) => (g.outputs.text_embeds as T).data.slice(i * img.length, (i + 1) * img.length).reduce((a: number, x: number, j: number) => a + x * img[j], 0));
        const dc = maxDiff(g.prompts.map((p: string) => z.sims[p]), cos);
        const de = maxDiff(z.emb, (g.outputs['vision_model.pooler_output'] as T).data);
        // sigmoid(exp(logit_scale) · cos + logit_bias) per label, the learned values read from model.safetensors
        const dp = maxDiff(g.prompts.map((p: string) => z.probs[p]), g.outputs.probs.data);
        console.log(`hub tiny-siglip in Chromium vs PyTorch: max |Δcosine| ${dc.toExponential(2)}, max |Δpooler_output| ${de.toExponential(2)}, max |Δsigmoid prob| ${dp.toExponential(2)}`);
        expect(dc).toBeLessThan(1e-4);
        expect(de).toBeLessThan(1e-4);
        expect(dp).toBeLessThan(1e-4);
      }
      // The panel says how the numbers relate: SigLIP's are independent per label, CLIP's sum to 1.
      const scoring = page.getByTestId('zero-shot-scoring');
      await expect(scoring).toHaveAttribute('data-scoring', name === 'tiny-siglip' ? 'sigmoid' : 'softmax');
      await expect(scoring).toContainText(name === 'tiny-siglip' ? 'do not sum to 1' : 'they sum to 1');
      await expect(page.getByTestId('zero-shot-temperature-note')).toHaveCount(0);
      await page.getByRole('button', { name: 'Models', exact: true }).click();
    } else {
      const g = golden(name);
      await page.getByRole('button', { name: 'Viewer', exact: true }).click();
      const c = await page.evaluate(async () => {
        const store = (window as any).cxrStudio.store; // eslint-disable-line @typescript-eslint/no-explicit-any
        await store.getState().classifyCurrent();
        const s = store.getState();
        const r = s.images.find((x: { id: string }) => x.id === s.currentId).classification;
        return { modelId: r.modelId as string, labels: r.labels as string[], probs: r.probabilities as number[] };
      });
      expect(c.modelId).toBe(id);
      expect(c.labels).toEqual(g.labels);
      const dp = maxDiff(c.probs, g.outputs.probs.data);
      console.log(`hub tiny-vit-cxr in Chromium vs PyTorch: max |Δprob| ${dp.toExponential(2)}`);
      expect(dp).toBeLessThan(1e-4);
      await expect(page.getByTestId('weights-badge').first()).toContainText('external model');
    }
  }
  expect(external).toEqual([]);
  expect(errors).toEqual([]);
});

test('a CLIP repo without model.safetensors: scores with the config.json temperature and says so next to the result', async ({ page, context }) => {
  test.setTimeout(240_000);
  const errors = watchErrors(page);
  const external = await offlineExceptHub(context);
  const id = `hf:${OWNER}/tiny-clip`;
  const g = golden('tiny-clip');
  await control({ hide: [`${OWNER}/tiny-clip/model.safetensors`] }); // as the Xenova/* repos that ship onnx/ only
  await open(page, [id]);
  await addFromHub(page, 'tiny-clip');
  await expect(page.getByTestId('hub-add-state')).toHaveAttribute('data-status', 'added');
  await page.getByRole('button', { name: 'Viewer', exact: true }).click();
  await addFiles(page, [png(g.image)]);
  await expect(page.getByRole('list', { name: 'Opened images' }).getByRole('listitem')).toHaveCount(1, { timeout: 60_000 });
  const probs = await page.evaluate(async (prompts: string[]) => {
    const store = (window as any).cxrStudio.store; // eslint-disable-line @typescript-eslint/no-explicit-any
    store.getState().setPrompts(prompts.map((p) => ({ label: p, prompts: [p] })));
    await store.getState().zeroShotCurrent();
    const s = store.getState();
    return s.images.find((x: { id: string }) => x.id === s.currentId).zeroShot.probabilities as Record<string, number>;
  }, g.prompts);
  const got = g.prompts.map((p: string) => probs[p]);
  expect(maxDiff(got, g.outputs.probs_config_scale.data)).toBeLessThan(1e-4); // softmax(exp(init) · cos) of PyTorch's embeddings
  const rank = (v: number[]) => v.map((_, i) => i).sort((a, b) => v[b] - v[a]);
  expect(rank(got)).toEqual(rank(g.outputs.probs.data)); // the ranking is the learned model's
  await expect(page.getByTestId('zero-shot-temperature-note')).toContainText('temperature from config.json (learned logit_scale not available in this repo): ranking exact, probabilities approximate');
  await expect(page.getByTestId('zero-shot-temperature-note')).toContainText('no model.safetensors in this repo');
  expect((await served()).filter((r) => r.path.endsWith('model.safetensors'))).toEqual([]);
  expect(external).toEqual([]);
  expect(errors).toEqual([]);
});

test('SAM added by id segments with clicks and a box as PyTorch does', async ({ page, context }) => {
  test.setTimeout(300_000);
  const errors = watchErrors(page);
  const external = await offlineExceptHub(context);
  const id = `hf:${OWNER}/tiny-sam-boxes`;
  await open(page, [id]);
  await addFromHub(page, 'tiny-sam-boxes');
  await expect(page.getByTestId('hub-add-state')).toHaveAttribute('data-status', 'added');
  await page.getByRole('button', { name: 'Segment', exact: true }).click();
  await expect(page.getByTestId('segment-model')).toHaveValue(id);
  const g = golden('tiny-sam-boxes');
  await addFiles(page, [png(g.image)]);
  await expect(page.getByTestId('segment-embedding')).toContainText('embedding computed', { timeout: 120_000 });
  for (const [k, c] of Object.entries(g.cases) as [string, { prompts: { points?: number[][]; labels?: number[]; box?: number[] }; outputs: Record<string, T> }][]) {
    if (!c.prompts.points?.length) continue; // box without a click: refused by app/lib/sam on this layout (tests/unit/hub)
    const prompt = { points: c.prompts.points.map(([x, y], i) => ({ x, y, label: c.prompts.labels![i] })), ...(c.prompts.box ? { box: c.prompts.box } : {}) };
    const d = await page.evaluate(async (p) => {
      const r = await (window as any).cxrStudio.store.getState().segmentDecodeLogits(p, true); // eslint-disable-line @typescript-eslint/no-explicit-any
      return { logits: (r.logits as Float32Array[]).map((l) => Array.from(l)), iou: r.iou as number[] };
    }, prompt);
    const per = c.outputs.masks.dims[2] * c.outputs.masks.dims[3];
    const dl = Math.max(...d.logits.map((l, i) => maxDiff(l, c.outputs.masks.data.slice(i * per, (i + 1) * per))));
    const di = maxDiff(d.iou, c.outputs.iou_scores.data);
    console.log(`hub tiny-sam-boxes/${k} in Chromium vs PyTorch: max |Δmask logits| ${dl.toExponential(2)}, max |ΔIoU| ${di.toExponential(2)}`);
    expect(dl).toBeLessThan(1e-4);
    expect(di).toBeLessThan(1e-4);
  }
  await expect(page.getByTestId('weights-badge').first()).toContainText('external model');
  expect(external).toEqual([]);
  expect(errors).toEqual([]);
});

test('a wrong architecture and a missing file are named before any graph is downloaded', async ({ page, context }) => {
  await offlineExceptHub(context);
  await open(page, []);
  await addFromHub(page, 'tiny-bert');
  await expect(page.getByTestId('hub-add-state')).toHaveAttribute('data-status', 'error');
  await expect(page.getByTestId('hub-add-state')).toContainText('architecture BertModel is not one the app runs (CLIPModel, SiglipModel, SamModel, *ForImageClassification)');
  await control({ hide: [`${OWNER}/tiny-sam/onnx/prompt_encoder_mask_decoder.onnx`, `${OWNER}/tiny-sam/onnx/prompt_encoder_mask_decoder_fp16.onnx`, `${OWNER}/tiny-sam/onnx/prompt_encoder_mask_decoder_quantized.onnx`] });
  await addFromHub(page, 'tiny-sam');
  await expect(page.getByTestId('hub-add-state')).toHaveAttribute('data-status', 'error');
  await expect(page.getByTestId('hub-add-state')).toContainText('cxr-fixtures/tiny-sam (sam) lacks onnx/prompt_encoder_mask_decoder.onnx');
  expect((await served()).filter((r) => r.path.includes('.onnx'))).toEqual([]);
  await expect(page.getByTestId(`model-row-hf:${OWNER}/tiny-bert`)).toHaveCount(0);
});

test('a graph whose bytes do not match its LFS sha256 is refused and not cached', async ({ page, context }) => {
  test.setTimeout(180_000);
  await offlineExceptHub(context);
  const id = `hf:${OWNER}/tiny-vit-cxr`;
  await open(page, [id]);
  await control({ corrupt: [`${OWNER}/tiny-vit-cxr/onnx/model.onnx`] });
  await addFromHub(page, 'tiny-vit-cxr');
  await expect(page.getByTestId('hub-add-state')).toHaveAttribute('data-status', 'added'); // metadata is intact
  await page.getByTestId(`download-${id}`).click();
  await expect(page.getByRole('alert').filter({ hasText: 'onnx/model.onnx failed its integrity check' }).first()).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId(`model-state-${id}`)).toHaveText('not downloaded');
  const cached = await page.evaluate(() => (window as any).cxrStudio.store.getState().stored.map((f: { path: string }) => f.path)); // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(cached).not.toContain('onnx/model.onnx');
});

test('a cached Hub model runs after an offline reload, its files re-verified from the cache', async ({ page, context }) => {
  test.setTimeout(240_000);
  const errors = watchErrors(page);
  const external = await offlineExceptHub(context);
  const id = `hf:${OWNER}/tiny-vit-cxr`;
  const g = golden('tiny-vit-cxr');
  await open(page, [id]);
  await addFromHub(page, 'tiny-vit-cxr');
  await page.getByTestId(`download-${id}`).click();
  await expect(page.getByTestId(`model-state-${id}`)).toHaveText(/downloaded \(fp32\)/, { timeout: 60_000 });
  await control({ offline: true });
  await page.reload();
  await expect(page.getByTestId('dropzone')).toBeVisible();
  await page.getByRole('button', { name: 'Models', exact: true }).click();
  await expect(page.getByTestId(`model-state-${id}`)).toHaveText(/downloaded \(fp32\)/);
  await page.getByRole('button', { name: 'Viewer', exact: true }).click();
  // The chosen model is not kept across reloads (the family default is); the Hub model is listed and chosen again.
  await page.getByTestId('classifier-select').selectOption(id);
  await addFiles(page, [png(g.image)]);
  await expect.poll(() => state(page, () => { const s = (window as any).cxrStudio.store.getState(); return s.images[0]?.classification?.modelId ?? null; }), { timeout: 90_000 }).toBe(id); // eslint-disable-line @typescript-eslint/no-explicit-any
  const probs = await state(page, () => (window as any).cxrStudio.store.getState().images[0].classification.probabilities); // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(maxDiff(probs as number[], g.outputs.probs.data)).toBeLessThan(1e-4);
  const after = (await served()).filter((r) => r.status === 0);
  expect(after.every((r) => !r.path.includes('.onnx'))).toBe(true); // offline: nothing fetched the graph again
  expect(external).toEqual([]);
  expect(errors).toEqual([]);
});

test('a local folder in the Hub layout is added, imported into the cache, and runs as PyTorch does after a reload', async ({ page, context }) => {
  test.setTimeout(180_000);
  const errors = watchErrors(page);
  const external = await offlineExceptHub(context);
  const id = 'hf:local/tiny-vit-cxr';
  const g = golden('tiny-vit-cxr');
  await open(page, [id]);
  await page.getByRole('button', { name: 'Models', exact: true }).click();
  await page.getByTestId('hub-folder-input').setInputFiles(path.join(ROOT, OWNER, 'tiny-vit-cxr'));
  await expect(page.getByTestId('hub-add-state')).toHaveAttribute('data-status', 'added', { timeout: 60_000 });
  await expect(page.getByTestId(`model-state-${id}`)).toHaveText(/downloaded \(.*fp32.*\)/);
  await expect(page.getByTestId(`model-row-${id}`).getByTestId('weights-badge')).toContainText('external model, weights not checked by this project');
  await page.reload(); // the folder's blobs are gone; the model runs from the cache, re-verified
  await page.getByTestId('classifier-select').selectOption(id);
  await addFiles(page, [png(g.image)]);
  await expect.poll(() => state(page, () => (window as any).cxrStudio.store.getState().images[0]?.classification?.modelId ?? null), { timeout: 90_000 }).toBe(id); // eslint-disable-line @typescript-eslint/no-explicit-any
  const probs = await state(page, () => (window as any).cxrStudio.store.getState().images[0].classification.probabilities); // eslint-disable-line @typescript-eslint/no-explicit-any
  const d = maxDiff(probs as number[], g.outputs.probs.data);
  console.log(`hub tiny-vit-cxr from a local folder in Chromium vs PyTorch: max |Δprob| ${d.toExponential(2)}`);
  expect(d).toBeLessThan(1e-4);
  expect(external).toEqual([]);
  expect(errors).toEqual([]);
});
