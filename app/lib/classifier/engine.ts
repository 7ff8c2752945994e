/**
 * The classifier engine: one lazily created ONNX session per model request, batch inference, softmax/threshold and
 * attention rollout from this folder. Runtime-agnostic: workers/classifier.worker.ts exposes it through comlink, the
 * CLI (through app/services/inference.ts) calls it in-process with the Node host.
 */
import type { Raster } from '../imaging/raster';
import { batchCoupled } from '../models/manifest';
import type { RuntimeReport } from '../runtime/report';
import { outcome, type Batch, type FamilyEngine, type ModelRequest, type Outcome, type Progress } from '../runtime/outcome';
import { createSessionFactory, nowMs, requestKey, SessionPool, type OrtHost, type Session } from '../runtime/sessions';
import { serialSession } from '../runtime/run-queue';
import { classifierThreshold, interpretClassifierOutputs, prepareClassifierBatch } from './pipeline';
import { attentionRollout, softmax } from './postprocess';
import { occlusionSensitivity } from './occlusion';
import { oodOfBatch, parseOodStats, type OodStats } from './ood';
import type { ClassifierResult, ClassifyOptions, Heatmap, OcclusionHeatmap, OcclusionRequestOptions } from './types';

export interface ClassifierEngine extends FamilyEngine {
  /** Classify a batch of rasters (any size; resized per the manifest's preprocessing). */
  classify(req: ModelRequest, rasters: Raster[], opts?: ClassifyOptions): Promise<Outcome<Batch<ClassifierResult>>>;
  /**
   * Occlusion-sensitivity heatmap of one raster (1 + cells forward passes of the same session; progress as
   * "occlusion <done>/<total>").
   */
  occlusion(req: ModelRequest, raster: Raster, opts?: OcclusionRequestOptions, onProgress?: Progress): Promise<Outcome<OcclusionHeatmap>>;
}

interface Loaded {
  session: Session;
  report: RuntimeReport;
  /** OOD statistics of the planned variant (its 'ood' file), when it has one. */
  ood?: OodStats;
  release(): Promise<void>;
}

export function createClassifierEngine(host: OrtHost): ClassifierEngine {
  const factory = createSessionFactory(host);
  const pool = new SessionPool<Loaded>();

  const getLoaded = (req: ModelRequest, onProgress?: Progress) =>
    pool.get(requestKey(req), req.entry.id, async () => {
      const { sessions, report } = await factory.create(req.entry, ['model'], req.override, req.source, onProgress);
      let ood: OodStats | undefined;
      const oodFile = req.entry.variants[report.dtype]?.files.find((f) => f.role === 'ood');
      if (oodFile) {
        try {
          ood = parseOodStats(JSON.parse(new TextDecoder().decode(await host.reader(req.source)(oodFile))));
          report.reasons = [...report.reasons, `out-of-distribution check: ${oodFile.path} (threshold ${ood.threshold.toFixed(2)})`];
        } catch (e) {
          // The classification itself still works; the UI says the check is off and why.
          report.reasons = [...report.reasons, `out-of-distribution check unavailable: ${e instanceof Error ? e.message : String(e)}`];
        }
      }
      // One run at a time on the session; its release waits for the runs in flight (app/lib/runtime/run-queue.ts).
      const session = serialSession(sessions.model);
      return { session, report, ood, release: () => session.release() };
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
    // The OOD score reads the attention maps too: fetch them whenever there are statistics (a few KB per image).
    const fetches = ['probabilities', 'logits', 'embedding', ...(wantHeatmap || l.ood ? ['attentions'] : [])].filter((n) => outNames.includes(n));
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
    // The OOD score reads the attention maps and the input tensor itself (its image-statistics component).
    const oods = l.ood && out.attentions ? oodOfBatch({ attentions: { data: out.attentions.data as Float32Array, dims: out.attentions.dims.map(Number) }, pixels: { data, dims } }, l.ood) : undefined;
    const results = interpreted.map((r, b): ClassifierResult => {
      let heatmap: Heatmap | undefined;
      if (wantHeatmap && out.attentions) {
        const h = attentionRollout(out.attentions.data as Float32Array, out.attentions.dims.map(Number), { batchIndex: b });
        heatmap = { width: h.gridW, height: h.gridH, data: h.grid, method: 'attention-rollout' };
      }
      const o = oods?.[b];
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
        ood: o && l.ood ? { score: o.score, threshold: o.threshold, ood: o.ood, badge: l.ood.badge } : undefined,
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
        // A dynamically quantized int8 graph scales activations over the whole batch: run it one image at a time so
        // that an image gets the same probability in the Viewer, in a batch and in the CLI, whatever its batch mates.
        let results: ClassifierResult[];
        if (batchCoupled(req.entry.variants[l.report.dtype])) {
          results = [];
          for (const r of rasters) results.push(...(await runBatch(req, l, [r], opts)));
        } else results = await runBatch(req, l, rasters, opts);
        return { results, report: { ...l.report } };
      }),
    occlusion: (req, raster, opts = {}, onProgress) =>
      outcome('Occlusion heatmap failed', async () => {
        const l = await getLoaded(req);
        const ort = await host.ort();
        const entry = req.entry;
        if (!entry.preprocessing) throw new Error(`${entry.name}: the manifest has no preprocessing`);
        const labels = entry.labels ?? ['NORMAL', 'PNEUMONIA'];
        const { data, dims } = prepareClassifierBatch([raster], entry.preprocessing);
        const patch = typeof entry.config?.patch_size === 'number' ? (entry.config.patch_size as number) : undefined;
        const input = l.session.inputNames[0] ?? 'pixel_values';
        const probName = l.session.outputNames.includes('probabilities') ? 'probabilities' : 'logits';
        const t0 = nowMs();
        const r = await occlusionSensitivity(
          async (x, d) => {
            const o = await l.session.run({ [input]: new ort.Tensor('float32', x, d) }, [probName]);
            const v = o[probName].data as Float32Array;
            o[probName].dispose?.();
            return probName === 'logits' ? softmax(v, labels.length) : v;
          },
          data,
          dims,
          { window: opts.window ?? patch, stride: opts.stride, targetClass: opts.targetClass, batchSize: 8, onProgress: (done, total) => onProgress?.(`occlusion ${done}/${total}`) },
        );
        return {
          width: r.gridW,
          height: r.gridH,
          data: r.grid,
          method: 'occlusion' as const,
          targetClass: r.targetClass,
          targetLabel: labels[r.targetClass] ?? String(r.targetClass),
          baseProbability: r.baseProbability,
          runs: r.runs,
          ms: nowMs() - t0,
        };
      }),
    release: (modelId) => pool.release(modelId),
    reset: () => pool.release(),
  };
}
