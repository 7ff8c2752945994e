/**
 * The app's classifier path on the real public/models/pneumonia-vit graph (whatever weights it has now): decode a
 * Kermany JPEG, preprocess per the manifest, run onnxruntime-web in Node, interpret outputs, roll out attention.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { parseManifest, findModel, chooseVariant, fileByRole } from '../../../app/lib/models/manifest';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { prepareClassifierBatch, interpretClassifierOutputs, classifierThreshold } from '../../../app/lib/classifier/pipeline';
import { attentionRollout, heatmapToRGBA } from '../../../app/lib/classifier/postprocess';
import { hasShared, lacks, readBytes, REPO_ROOT, sharedPath } from '../helpers/shared';

ort.env.wasm.numThreads = 1;
const MODELS = path.join(REPO_ROOT, 'public/models');
const manifestFile = path.join(MODELS, 'manifest.json');
const manifest = fs.existsSync(manifestFile) ? parseManifest(JSON.parse(fs.readFileSync(manifestFile, 'utf8'))) : null;
const entry = manifest ? findModel(manifest, 'pneumonia-vit') : undefined;
const variant = entry ? chooseVariant(entry, { backend: 'wasm', shaderF16: false }) : null;
const file = variant ? fileByRole(variant, 'model') ?? variant.files[0] : undefined;
const ready = !!file && fs.existsSync(path.join(MODELS, file.path)) && hasShared('data/kermany-cxr-224/test/PNEUMONIA');

describe.skipIf(lacks(ready, 'public/models/pneumonia-vit (its manifest entry and graph) and ../shared Kermany test images'))('pneumonia-vit in public/models (app classifier path in Node)', () => {
  it('classifies two real images in one batch and rolls out attention to a patch grid', async () => {
    const s = await ort.InferenceSession.create(fs.readFileSync(path.join(MODELS, file!.path)), { executionProviders: ['wasm'] });
    const names = ['NORMAL/IM-0001-0001.jpeg', 'PNEUMONIA/' + fs.readdirSync(sharedPath('data/kermany-cxr-224/test/PNEUMONIA')).sort()[0]];
    const rasters = [];
    for (const n of names) rasters.push((await decodeImageFileNode(readBytes(sharedPath('data/kermany-cxr-224/test', n)))).raster);
    const { data, dims } = prepareClassifierBatch(rasters, entry!.preprocessing!);
    const out = await s.run({ pixel_values: new ort.Tensor('float32', data, dims) });
    for (const name of ['logits', 'probabilities', 'embedding', 'attentions']) expect(s.outputNames).toContain(name);
    const res = interpretClassifierOutputs(
      { probabilities: out.probabilities.data as Float32Array, embedding: out.embedding.data as Float32Array },
      2, entry!.labels!, classifierThreshold(entry!),
    );
    expect(res.length).toBe(2);
    for (const r of res) {
      expect(r.probabilities.NORMAL + r.probabilities.PNEUMONIA).toBeCloseTo(1, 5);
      expect(r.embedding!.length).toBe(out.embedding.dims[1]);
    }
    const adims = out.attentions.dims as number[];
    expect(adims.length).toBe(5);
    const t0 = performance.now();
    const roll = attentionRollout(out.attentions.data as Float32Array, adims, { batchIndex: 1 });
    const ms = performance.now() - t0;
    expect(roll.gridW * roll.gridH).toBe(adims[3] - 1);
    expect(Math.max(...roll.grid)).toBeCloseTo(1, 6);
    expect(Math.min(...roll.grid)).toBeGreaterThanOrEqual(0);
    const overlay = heatmapToRGBA(roll.grid, roll.gridW, roll.gridH, 224, 224);
    expect(overlay.length).toBe(224 * 224 * 4);
    console.log(`rollout over [${adims}] took ${ms.toFixed(0)} ms`);
  });
});
