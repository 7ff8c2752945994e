/**
 * The classifier engine: one lazily created ONNX session per model request, batch inference, softmax/threshold and
 * attention rollout from this folder. Runtime-agnostic: workers/classifier.worker.ts exposes it through comlink, the
 * CLI (through app/services/inference.ts) calls it in-process with the Node host.
 */
import type { Raster } from '../imaging/raster';
import type { RuntimeReport } from '../runtime/report';
import { outcome, type Batch, type FamilyEngine, type ModelRequest, type Outcome, type Progress } from '../runtime/outcome';
import { createSessionFactory, nowMs, requestKey, SessionPool, type OrtHost, type Session } from '../runtime/sessions';
import { classifierThreshold, interpretClassifierOutputs, prepareClassifierBatch } from './pipeline';
import { attentionRollout } from './postprocess';
import type { ClassifierResult, ClassifyOptions, Heatmap } from './types';

export interface ClassifierEngine extends FamilyEngine {
  /** Classify a batch of rasters (any size; resized per the manifest's preprocessing). */
  classify(req: ModelRequest, rasters: Raster[], opts?: ClassifyOptions): Promise<Outcome<Batch<ClassifierResult>>>;
}

interface Loaded {
  session: Session;
  report: RuntimeReport;
  release(): Promise<void>;
}

export function createClassifierEngine(host: OrtHost): ClassifierEngine {
  const factory = createSessionFactory(host);
  const pool = new SessionPool<Loaded>();

  const getLoaded = (req: ModelRequest, onProgress?: Progress) =>
    pool.get(requestKey(req), req.entry.id, async () => {
      const { sessions, report } = await factory.create(req.entry, ['model'], req.override, req.source, onProgress);
      return { session: sessions.model, report, release: () => sessions.model.release() };
    });

  async function runBatch(req: ModelRequest, l: Loaded, rasters: Raster[], opts: ClassifyOptions): Promise<ClassifierResult[]> {
    const ort = await host.ort();
    const entry = req.entry;
    const wantHeatmap = opts.heatmap ?? true;
    const pre = entry.preprocessing;
    if (!pre) throw new Error(`${entry.name}: the manifest has no preprocessing`);
    const labels = entry.labels ?? ['NORMAL', 'PNEUMONIA'];
    const { data, dims } = prepareClassifierBatch(rasters, pre);
    const outNames = l.session.outputNames;
    const fetches = ['probabilities', 'logits', 'embedding', ...(wantHeatmap ? ['attentions'] : [])].filter((n) => outNames.includes(n));
    const t0 = nowMs();
    const out = await l.session.run({ [l.session.inputNames[0] ?? 'pixel_values']: new ort.Tensor('float32', data, dims) }, fetches);
    const inferenceMs = nowMs() - t0;
    l.report.lastInferenceMs = Math.round(inferenceMs * 10) / 10;
    const interpreted = interpretClassifierOutputs(
      {
        probabilities: out.probabilities?.data as Float32Array | undefined,
        logits: out.logits?.data as Float32Array | undefined,
        embedding: out.embedding?.data as Float32Array | undefined,
      },
      rasters.length,
      labels,
      opts.threshold ?? classifierThreshold(entry),
    );
    const results = interpreted.map((r, b): ClassifierResult => {
      let heatmap: Heatmap | undefined;
      if (wantHeatmap && out.attentions) {
        const h = attentionRollout(out.attentions.data as Float32Array, out.attentions.dims.map(Number), { batchIndex: b });
        heatmap = { width: h.gridW, height: h.gridH, data: h.grid };
      }
      const probabilities = labels.map((x) => r.probabilities[x]);
      return {
        modelId: entry.id,
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

  return {
    load: (req, onProgress) => outcome(`Could not load ${req.entry.name}`, async () => ({ ...(await getLoaded(req, onProgress)).report })),
    classify: (req, rasters, opts = {}) =>
      outcome('Classification failed', async () => {
        const l = await getLoaded(req);
        const results = await runBatch(req, l, rasters, opts);
        return { results, report: { ...l.report } };
      }),
    release: (modelId) => pool.release(modelId),
    reset: () => pool.release(),
  };
}
