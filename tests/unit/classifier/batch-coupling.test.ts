/**
 * A dynamically quantized int8 graph (onnxruntime quantize_dynamic) takes one activation scale per input tensor,
 * batch included, so run as a batch an image's probability would depend on its batch mates. The classifier engine
 * runs such a variant one image at a time: the same image gets the same probability alone and in any batch, as the
 * Viewer (one image), the batch view (chunks) and `npm run label` need. A statically quantized graph (QDQ, fixed
 * activation scales: pneumonia-vit's since issue 21) is run batched and is batch-independent. Real graphs,
 * onnxruntime-web in Node.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { createClassifierEngine } from '../../../app/lib/classifier/engine';
import { batchCoupled, findModel, parseManifest } from '../../../app/lib/models/manifest';
import type { Raster } from '../../../app/lib/imaging/raster';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { nodeOrtHost } from '../../../app/platform/node/ort';
import { hasShared, lacks, readBytes, REPO_ROOT, sharedPath } from '../helpers/shared';

const MODELS = path.join(REPO_ROOT, 'public/models');
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
// tiny-vit-classifier's int8 is dynamic (quantize_dynamic); pneumonia-vit's is static QDQ since issue 21.
const entry = findModel(manifest, 'tiny-vit-classifier');
const ready = !!entry?.variants.int8 && entry.variants.int8.activation_quantization !== 'static' && hasShared('data/kermany-cxr-224/test/PNEUMONIA');
const stat = findModel(manifest, 'pneumonia-vit');
const staticReady = stat?.variants.int8?.activation_quantization === 'static' && hasShared('data/kermany-cxr-224/test/PNEUMONIA');

async function fourImages(): Promise<Raster[]> {
  const dir = sharedPath('data/kermany-cxr-224/test/PNEUMONIA');
  const rasters: Raster[] = [];
  for (const n of fs.readdirSync(dir).sort().slice(0, 4)) rasters.push((await decodeImageFileNode(readBytes(path.join(dir, n)))).raster);
  return rasters;
}

describe('batchCoupled', () => {
  it('int8 is batch-coupled unless its activations are statically quantized; fp32/fp16 never', () => {
    const files = [{ role: 'model', path: 'm.onnx', bytes: 1, sha256: '0'.repeat(64) }];
    expect(batchCoupled({ dtype: 'int8', files })).toBe(true);
    expect(batchCoupled({ dtype: 'int8', files, activation_quantization: 'dynamic' })).toBe(true);
    expect(batchCoupled({ dtype: 'int8', files, activation_quantization: 'static' })).toBe(false);
    expect(batchCoupled({ dtype: 'fp32', files })).toBe(false);
    expect(batchCoupled(undefined)).toBe(false);
  });
});

describe.skipIf(lacks(ready, 'tiny-vit-classifier dynamic int8 in public/models and ../shared Kermany test images'))('classifier engine on a dynamic int8 graph', () => {
  it('an image gets the same probability alone and among other images', async () => {
    ort.env.wasm.numThreads = 1;
    const engine = createClassifierEngine(nodeOrtHost({ modelsDir: MODELS, threads: 1, preferDtype: 'int8' }));
    const req = { entry: entry!, override: 'wasm' as const, source: { kind: 'app' as const } };
    const rasters = await fourImages();
    const together = await engine.classify(req, rasters, { heatmap: false });
    if (!together.ok) throw new Error(together.message);
    expect(together.value.report.dtype).toBe('int8');
    expect(batchCoupled(entry!.variants.int8)).toBe(true);
    for (let i = 0; i < rasters.length; i++) {
      const alone = await engine.classify(req, [rasters[i]], { heatmap: false });
      if (!alone.ok) throw new Error(alone.message);
      expect(alone.value.results[0].positiveProbability).toBe(together.value.results[i].positiveProbability);
    }
    // and the graph really is batch-coupled: the same four images as one ORT batch differ from one-at-a-time
    // (what the engine avoids), so this test would catch a regression to batching
    const file = entry!.variants.int8!.files.find((f) => f.role === 'model')!;
    const s = await ort.InferenceSession.create(fs.readFileSync(path.join(MODELS, file.path)), { executionProviders: ['wasm'] });
    const { prepareClassifierBatch } = await import('../../../app/lib/classifier/pipeline');
    const { data, dims } = prepareClassifierBatch(rasters, entry!.preprocessing!);
    const p = (await s.run({ pixel_values: new ort.Tensor('float32', data, dims) }, ['probabilities'])).probabilities.data as Float32Array;
    const batched = rasters.map((_, i) => p[i * 2 + 1]);
    const results = together.value.results;
    const maxDiff = Math.max(...batched.map((v, i) => Math.abs((v ?? NaN) - (results[i]!.positiveProbability ?? NaN))));
    console.log(`int8 one-batch vs one-at-a-time: max |dp| = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeGreaterThan(0);
    await s.release();
  });
});

describe.skipIf(lacks(staticReady, 'pneumonia-vit static int8 in public/models and ../shared Kermany test images'))('classifier engine on a static int8 graph', () => {
  it('runs it as one batch, and an image gets the same probability alone and among other images', async () => {
    ort.env.wasm.numThreads = 1;
    expect(batchCoupled(stat!.variants.int8)).toBe(false);
    const engine = createClassifierEngine(nodeOrtHost({ modelsDir: MODELS, threads: 1, preferDtype: 'int8' }));
    const req = { entry: stat!, override: 'wasm' as const, source: { kind: 'app' as const } };
    const rasters = await fourImages();
    const together = await engine.classify(req, rasters, { heatmap: false });
    if (!together.ok) throw new Error(together.message);
    expect(together.value.report.dtype).toBe('int8');
    let maxDiff = 0;
    for (let i = 0; i < rasters.length; i++) {
      const alone = await engine.classify(req, [rasters[i]], { heatmap: false });
      if (!alone.ok) throw new Error(alone.message);
      maxDiff = Math.max(maxDiff, Math.abs(alone.value.results[0].positiveProbability! - together.value.results[i].positiveProbability!));
    }
    console.log(`static int8 one-batch vs one-at-a-time: max |dp| = ${maxDiff.toExponential(2)}`);
    // fixed activation scales: only float summation order may differ between batch shapes
    expect(maxDiff).toBeLessThan(1e-5);
  });
});

const clip = findModel(manifest, 'tiny-biomedclip');
describe.skipIf(lacks(!!clip?.variants.int8, 'tiny-biomedclip int8 in public/models'))('CLIP engine on a dynamic int8 graph', () => {
  it('image embeddings and zero-shot scores do not depend on the batch or on which prompts were cached', async () => {
    const { createClipEngine } = await import('../../../app/lib/clip/engine');
    const gray = (v: number): Raster => ({ width: 40, height: 40, data: new Uint8ClampedArray(40 * 40 * 4).map((_, i) => (i % 4 === 3 ? 255 : (v * 7 + i) % 256)) });
    const sets = [
      { label: 'A', prompts: ['a chest x-ray', 'an x-ray of the chest'] },
      { label: 'B', prompts: ['a normal chest x-ray', 'pneumonia'] },
    ];
    const run = async (rasters: Raster[]) => {
      // a fresh engine each time: an empty prompt cache, so all four prompts miss it together
      const engine = createClipEngine(nodeOrtHost({ modelsDir: MODELS, threads: 1, preferDtype: 'int8' }));
      const req = { entry: clip!, override: 'wasm' as const, source: { kind: 'app' as const } };
      const out = await engine.zeroShot(req, rasters, sets);
      if (!out.ok) throw new Error(out.message);
      expect(out.value.report.dtype).toBe('int8');
      return out.value.results;
    };
    const imgs = [gray(10), gray(90), gray(170)];
    const together = await run(imgs);
    for (let i = 0; i < imgs.length; i++) {
      const [alone] = await run([imgs[i]!]);
      expect(Array.from(alone!.imageEmbedding)).toEqual(Array.from(together[i]!.imageEmbedding));
      expect(alone!.probabilities).toEqual(together[i]!.probabilities);
    }
  });
});
