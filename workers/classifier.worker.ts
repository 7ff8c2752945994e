/**
 * Classifier worker (pneumonia-vit and other 'classifier' models): a thin adapter between the UI and ONNX Runtime.
 * One lazily created session per model+variant; preprocessing, softmax and attention rollout come from app/lib.
 *
 * Model bytes: read by the worker from the model cache (see modelCacheReader in ort-runtime.ts for why).
 */
import * as Comlink from 'comlink';
import type { ModelEntry } from '../app/lib/models/manifest-types';
import type { ModelSource } from '../app/lib/models/sources';
import type { Raster } from '../app/lib/imaging/raster';
import type { BackendOverride, RuntimeReport } from '../app/lib/runtime';
import { attentionRollout, classifierThreshold, interpretClassifierOutputs, prepareClassifierBatch } from '../app/lib/classify';
import { modelCacheReader, createSessions, errorMessage, loadOrt, type Session } from './ort-runtime';

export interface ClassifierLoadRequest {
  entry: ModelEntry;
  override: BackendOverride;
  /** Where the files came from: their cache keys derive from it (local folders: without their blobs). */
  source: ModelSource;
}

export interface Heatmap {
  /** Patch grid size (e.g. 14×14 for a ViT-B/16 at 224). */
  width: number;
  height: number;
  /** Rollout relevance per patch, normalised to [0, 1]. */
  data: Float32Array;
}

export interface ClassifierResult {
  modelId: string;
  labels: string[];
  probabilities: number[];
  predicted: string;
  /** Probability of the predicted label. */
  confidence: number;
  /** Binary models: P(PNEUMONIA) (or the second label), the score the metrics and the threshold use. */
  positiveProbability?: number;
  threshold?: number;
  embedding: Float32Array;
  heatmap?: Heatmap;
  inferenceMs: number;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; message: string };

interface Loaded {
  key: string;
  entry: ModelEntry;
  session: Session;
  report: RuntimeReport;
}

const loaded = new Map<string, Promise<Loaded>>();

function keyOf(req: ClassifierLoadRequest): string {
  return `${req.entry.id}|${req.override}|${JSON.stringify(req.source)}`;
}

async function getLoaded(req: ClassifierLoadRequest, onProgress?: (msg: string) => void): Promise<Loaded> {
  const key = keyOf(req);
  let p = loaded.get(key);
  if (!p) {
    p = (async () => {
      const { sessions, report } = await createSessions(req.entry, ['model'], req.override, modelCacheReader(req.source), (s) =>
        onProgress?.(s),
      );
      return { key, entry: req.entry, session: sessions.model, report };
    })();
    loaded.set(key, p);
    p.catch(() => loaded.delete(key));
  }
  return p;
}

async function runBatch(l: Loaded, rasters: Raster[], wantHeatmap: boolean): Promise<ClassifierResult[]> {
  const ort = await loadOrt();
  const pre = l.entry.preprocessing;
  if (!pre) throw new Error(`${l.entry.name}: the manifest has no preprocessing`);
  const labels = l.entry.labels ?? ['NORMAL', 'PNEUMONIA'];
  const { data, dims } = prepareClassifierBatch(rasters, pre);
  const outNames = l.session.outputNames;
  const fetches = ['probabilities', 'logits', 'embedding', ...(wantHeatmap ? ['attentions'] : [])].filter((n) => outNames.includes(n));
  const t0 = performance.now();
  const out = await l.session.run({ [l.session.inputNames[0] ?? 'pixel_values']: new ort.Tensor('float32', data, dims) }, fetches);
  const inferenceMs = performance.now() - t0;
  l.report.lastInferenceMs = Math.round(inferenceMs * 10) / 10;
  const interpreted = interpretClassifierOutputs(
    {
      probabilities: out.probabilities?.data as Float32Array | undefined,
      logits: out.logits?.data as Float32Array | undefined,
      embedding: out.embedding?.data as Float32Array | undefined,
    },
    rasters.length,
    labels,
    classifierThreshold(l.entry),
  );
  const results = interpreted.map((r, b): ClassifierResult => {
    let heatmap: Heatmap | undefined;
    if (wantHeatmap && out.attentions) {
      const h = attentionRollout(out.attentions.data as Float32Array, out.attentions.dims.map(Number), { batchIndex: b });
      heatmap = { width: h.gridW, height: h.gridH, data: h.grid };
    }
    const probabilities = labels.map((x) => r.probabilities[x]);
    return {
      modelId: l.entry.id,
      labels,
      probabilities,
      predicted: r.label,
      confidence: probabilities[r.labelIndex],
      positiveProbability: r.positiveProbability,
      threshold: r.threshold,
      embedding: r.embedding ?? new Float32Array(0),
      heatmap,
      inferenceMs: inferenceMs / rasters.length,
    };
  });
  for (const t of Object.values(out)) t.dispose?.();
  return results;
}

const api = {
  /** Create (or reuse) the session; returns what runs where and why. */
  async load(req: ClassifierLoadRequest, onProgress?: (msg: string) => void): Promise<Outcome<RuntimeReport>> {
    try {
      const l = await getLoaded(req, onProgress);
      return { ok: true, value: { ...l.report } };
    } catch (e) {
      return { ok: false, message: `Could not load ${req.entry.name}: ${errorMessage(e)}` };
    }
  },

  async classify(req: ClassifierLoadRequest, rasters: Raster[], wantHeatmap = true): Promise<Outcome<{ results: ClassifierResult[]; report: RuntimeReport }>> {
    try {
      const l = await getLoaded(req);
      const results = await runBatch(l, rasters, wantHeatmap);
      return { ok: true, value: { results, report: { ...l.report } } };
    } catch (e) {
      return { ok: false, message: `Classification failed: ${errorMessage(e)}` };
    }
  },

  /** Drop every session (the backend setting changed, or a model was deleted). */
  async reset(): Promise<void> {
    const all = [...loaded.values()];
    loaded.clear();
    await Promise.all(all.map((p) => p.then((l) => l.session.release()).catch(() => undefined)));
  },
};

export type ClassifierApi = typeof api;
Comlink.expose(api);
