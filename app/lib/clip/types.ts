/** What the CLIP engine (engine.ts, run in workers/clip.worker.ts and the CLI) takes and returns. */
import type { ZeroShotResult } from './zero-shot';

/** One zero-shot label and its prompts; the label's text embedding is the normalised mean of the prompts'. */
export interface PromptSet {
  label: string;
  prompts: string[];
}

/** The zero-shot labelling of one image, with its CLIP image embedding. */
export interface ZeroShotOutput extends ZeroShotResult {
  /** L2-normalised by the graph (`image_embeds`), length = projection dim. */
  imageEmbedding: Float32Array;
  /** Image-encoder time per image in ms. */
  inferenceMs: number;
  /**
   * Set when the scores were not computed with the model's learned temperature (a Hub repo without
   * model.safetensors): says so, for the panel and the CLI sidecar (app/lib/hub/temperature.ts).
   */
  temperatureNote?: string;
  /** What the result was computed for (image, frame, model, variant), as ClassifierResult.key. */
  key?: string;
}
