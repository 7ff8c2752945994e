/**
 * Classification of one image, the operation behind the Viewer's classification panel (app/store/classifier.ts):
 * the chosen classifier's probabilities, prediction at the model card's threshold, attention-rollout heatmap and
 * out-of-distribution verdict (app/lib/classifier/engine.ts), and the occlusion-sensitivity map on request. Free of
 * React and the DOM; the store supplies the inference service and the request.
 */
import type { ClassifierEngine } from '../lib/classifier/engine';
import type { ClassifierResult, OcclusionHeatmap } from '../lib/classifier/types';
import { createRaster, type Raster } from '../lib/imaging/raster';
import { modelInputSize } from '../lib/imaging/model-inputs';
import type { RuntimeReport } from '../lib/runtime/report';
import type { ModelRequest, Progress } from '../lib/runtime/outcome';
import type { InferenceService } from './inference';

/**
 * Classify one raster (any size: resized per the manifest's preprocessing, or pre-resized by the imaging worker).
 * Throws an Error naming the model and the cause (download, session, inference).
 */
export async function classifyImage(inference: InferenceService, req: ModelRequest, raster: Raster, opts: { heatmap?: boolean } = {}): Promise<{ result: ClassifierResult; report: RuntimeReport }> {
  const out = await inference.run(req, (e: ClassifierEngine) => e.classify(req, [raster], { heatmap: opts.heatmap ?? true }));
  return { result: out.results[0], report: out.report };
}

/**
 * Occlusion sensitivity (Zeiler & Fergus 2014) of one raster: 1 + cells forward passes; `onCells(done, total)`
 * follows them. Throws like classifyImage.
 */
export async function occludeImage(inference: InferenceService, req: ModelRequest, raster: Raster, onCells?: (done: number, total: number) => void): Promise<OcclusionHeatmap> {
  const progress: Progress = (msg) => {
    const m = /(\d+)\/(\d+)/.exec(msg);
    if (m) onCells?.(Number(m[1]), Number(m[2]));
  };
  return inference.run(req, (e: ClassifierEngine) => e.occlusion(req, raster, {}, progress));
}

/**
 * One classification of a mid-grey image at the model's input size (preprocessing.size, 224×224 by default), its
 * result dropped: what the first real drop would otherwise pay on top of its own inference — ORT's first run of the
 * session (buffer allocation, kernel set-up) and the first, unoptimised runs of the worker's preprocessing, OOD and
 * rollout code (measured cold in a new worker 120-320 ms against 5-10 ms once warm, 2 loaded cores, README "What a
 * user waits for"). Run by the idle prewarm (app/store/models.ts), never on a user's path. Throws like classifyImage.
 */
export async function warmUpClassifier(inference: InferenceService, req: ModelRequest): Promise<void> {
  const { width, height } = modelInputSize(req.entry);
  const raster = createRaster(width, height);
  raster.data.fill(128);
  await classifyImage(inference, req, raster);
}
