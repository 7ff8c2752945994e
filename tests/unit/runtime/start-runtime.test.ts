/**
 * SessionFactory.startRuntime (app/lib/runtime/sessions.ts): the one-node graph it starts ORT with is a real ONNX model
 * (onnxruntime-web runs it: Identity of a float32 [1]), the thread count it sets is the plan's and stays the one the
 * model's session is then created with, and the model then classifies exactly as without the early start.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { createClassifierEngine } from '../../../app/lib/classifier/engine';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';
import { modelPlanFacts, NO_GPU } from '../../../app/lib/runtime';
import { START_GRAPH, type Ort, type OrtHost } from '../../../app/lib/runtime/sessions';
import { REPO_ROOT } from '../helpers/shared';

const manifestFile = path.join(REPO_ROOT, 'public/models/manifest.json');
const entry = fs.existsSync(manifestFile)
  ? (JSON.parse(fs.readFileSync(manifestFile, 'utf8')).models.find((m: ModelEntry) => m.id === 'tiny-vit-classifier') as ModelEntry | undefined)
  : undefined;

const host = (): OrtHost => ({
  ort: async () => ort as unknown as Ort,
  // hardwareConcurrency 2, not isolated: the plan's WASM thread count is 1 (no SharedArrayBuffer)
  planInputs: async (e, override) => ({ gpu: NO_GPU, crossOriginIsolated: false, hardwareConcurrency: 2, override, ...modelPlanFacts(e) }),
  reader: () => async (file) => new Uint8Array(fs.readFileSync(path.join(REPO_ROOT, 'public/models', file.path))),
});

const grey = (v: number) => ({ width: 32, height: 32, data: new Uint8ClampedArray(32 * 32 * 4).map((_, i) => (i % 4 === 3 ? 255 : (v * 7 + i) % 256)) });

describe('startRuntime', () => {
  it('its start graph is a valid one-node ONNX model: Identity of a float32 [1]', async () => {
    const s = await ort.InferenceSession.create(START_GRAPH, { executionProviders: ['wasm'] });
    try {
      expect(s.inputNames).toEqual(['x']);
      expect(s.outputNames).toEqual(['y']);
      const out = await s.run({ x: new ort.Tensor('float32', new Float32Array([0.25]), [1]) });
      expect(Array.from(out.y.data as Float32Array)).toEqual([0.25]);
    } finally {
      await s.release();
    }
  });

  it.skipIf(!entry)('started early, the classifier then gives the same probabilities and heatmap as one started by its first call', async () => {
    const req = { entry: entry!, override: 'wasm' as const, source: { kind: 'app' as const } };
    const early = createClassifierEngine(host());
    const started = await early.startRuntime(req);
    expect(started).toEqual({ ok: true, value: true });
    expect(ort.env.wasm.numThreads).toBe(1);
    const a = await early.classify(req, [grey(3), grey(90)], { heatmap: true });
    const b = await createClassifierEngine(host()).classify(req, [grey(3), grey(90)], { heatmap: true });
    if (!a.ok || !b.ok) throw new Error(`classify failed: ${JSON.stringify([a, b]).slice(0, 300)}`);
    expect(a.value.results.map((r) => r.probabilities)).toEqual(b.value.results.map((r) => r.probabilities));
    expect(a.value.results.map((r) => Array.from(r.heatmap!.data))).toEqual(b.value.results.map((r) => Array.from(r.heatmap!.data)));
    expect(a.value.report.numThreads).toBe(1);
    await early.reset();
  });
});
