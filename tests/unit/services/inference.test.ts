/**
 * The inference service with Node's adapters and the real engines on the committed fixture models (ONNX Runtime's
 * Node build; nothing mocked): ensure downloaded -> ensure session -> run, one model per family, clear errors.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClassifierEngine, type ClassifierEngine } from '../../../app/lib/classifier/engine';
import { createClipEngine, type ClipEngine } from '../../../app/lib/clip/engine';
import { findModel, parseManifest } from '../../../app/lib/models/manifest';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';
import type { ModelRequest } from '../../../app/lib/runtime/outcome';
import { nodeModelFiles } from '../../../app/platform/node/model-files';
import { nodeOrtHost, nodePlanInputs } from '../../../app/platform/node/ort';
import { InferenceService } from '../../../app/services/inference';
import { lacks, REPO_ROOT } from '../helpers/shared';

const MODELS = path.join(REPO_ROOT, 'public/models');
const manifestFile = path.join(MODELS, 'manifest.json');
const manifest = fs.existsSync(manifestFile) ? parseManifest(JSON.parse(fs.readFileSync(manifestFile, 'utf8'))) : null;
const tinyVit = manifest && findModel(manifest, 'tiny-vit-classifier');
const tinyClip = manifest && findModel(manifest, 'tiny-biomedclip');
const gray = (v: number) => ({ width: 40, height: 40, data: new Uint8ClampedArray(40 * 40 * 4).map((_, i) => (i % 4 === 3 ? 255 : (v + i) % 256)) });

function service(modelsDir: string, released: string[] = []) {
  const opts = { modelsDir, threads: 1 };
  const host = nodeOrtHost(opts);
  return new InferenceService({
    files: nodeModelFiles(modelsDir),
    planInputs: nodePlanInputs(opts),
    engines: { classifier: createClassifierEngine(host), clip: createClipEngine(host) },
    onReleased: (id) => released.push(id),
  });
}
const request = (entry: ModelEntry): ModelRequest => ({ entry, override: 'wasm', source: { kind: 'app' } });

describe.skipIf(lacks(!!tinyVit && !!tinyClip, 'tiny-vit-classifier and tiny-biomedclip in public/models'))('InferenceService (Node adapters, real engines)', () => {
  it('runs a batch, keeps one model per family and releases the previous one on a switch', async () => {
    const released: string[] = [];
    const svc = service(MODELS, released);
    const req = request(tinyVit!);
    const out = await svc.run(req, (e: ClassifierEngine) => e.classify(req, [gray(10), gray(90)], { heatmap: true }));
    expect(out.results).toHaveLength(2);
    for (const r of out.results) {
      expect(r.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(r.labels).toContain(r.predicted);
      expect(r.heatmap!.data.length).toBe(r.heatmap!.width * r.heatmap!.height);
    }
    expect(out.report).toMatchObject({ modelId: 'tiny-vit-classifier', backend: 'wasm', dtype: 'fp32', numThreads: 1 });
    // Another family does not evict this one.
    const creq = request(tinyClip!);
    const z = await svc.run(creq, (e: ClipEngine) => e.zeroShot(creq, [gray(10)], [{ label: 'A', prompts: ['a chest x-ray'] }, { label: 'B', prompts: ['a normal chest x-ray'] }]));
    expect(Object.values(z.results[0].probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(svc.loaded()).toEqual({ classifier: 'tiny-vit-classifier', clip: 'tiny-biomedclip' });
    expect(released).toEqual([]);
    // A second classifier (same graph under another id) replaces the first one's sessions.
    const other = request({ ...tinyVit!, id: 'tiny-vit-copy' });
    const again = await svc.run(other, (e: ClassifierEngine) => e.classify(other, [gray(10)], { heatmap: false }));
    expect(again.results[0].probabilities).toEqual(out.results[0].probabilities);
    expect(released).toEqual(['tiny-vit-classifier']);
    expect(svc.loaded()).toEqual({ classifier: 'tiny-vit-copy', clip: 'tiny-biomedclip' });
    await svc.release();
    expect(svc.loaded()).toEqual({});
    expect(released.sort()).toEqual(['tiny-biomedclip', 'tiny-vit-classifier', 'tiny-vit-copy']);
  });

  it('a model file that does not match the manifest is refused before any session is created', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-svc-'));
    const file = tinyVit!.variants.fp32!.files[0];
    fs.mkdirSync(path.join(dir, path.dirname(file.path)), { recursive: true });
    const bytes = fs.readFileSync(path.join(MODELS, file.path));
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(path.join(dir, file.path), bytes);
    const svc = service(dir);
    await expect(svc.ensureSession(request(tinyVit!))).rejects.toThrow(/sha256 .* does not match the manifest/);
    expect(svc.loaded()).toEqual({});
    fs.rmSync(path.join(dir, file.path));
    await expect(svc.ensureSession(request(tinyVit!))).rejects.toThrow(/Model file missing/);
  });

  it('a model with no variant this device can run is named in the error', async () => {
    const fp16Only: ModelEntry = { ...tinyVit!, id: 'fp16-only', variants: { fp16: { ...tinyVit!.variants.fp32!, dtype: 'fp16' } } };
    await expect(service(MODELS).ensureSession(request(fp16Only))).rejects.toThrow(/cannot run here: .*fp16/);
  });

  it("an engine's failure is thrown with the engine's message", async () => {
    const svc = service(MODELS);
    const req = request(tinyVit!);
    await expect(svc.run(req, (e: ClassifierEngine) => e.classify(req, []))).rejects.toThrow(/^Classification failed: /);
    const noFamily = { ...tinyVit!, id: 'x', family: 'sd' as const };
    await expect(svc.ensureSession(request(noFamily))).rejects.toThrow(/no engine for the model family 'sd'/);
  });
});
