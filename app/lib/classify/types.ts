/** What the classifier engine (engine.ts, run in workers/classifier.worker.ts and the CLI) returns. */

export interface Heatmap {
  /** Patch grid size (e.g. 14×14 for a ViT-B/16 at 224). */
  width: number;
  height: number;
  /** Attention-rollout relevance per patch (Abnar & Zuidema 2020), normalised to [0, 1], row-major. */
  data: Float32Array;
}

/** The classification of one image. */
export interface ClassifierResult {
  modelId: string;
  labels: string[];
  /** Per label, in `labels` order; sums to 1. */
  probabilities: number[];
  predicted: string;
  /** Probability of the predicted label. */
  confidence: number;
  /** Binary models: P(PNEUMONIA) (or the second label), the score the metrics and the threshold use. */
  positiveProbability?: number;
  threshold?: number;
  /** The graph's `embedding` output (penultimate features); empty when the graph has none. */
  embedding: Float32Array;
  heatmap?: Heatmap;
  /** Inference time per image in ms (the batch's time divided by its size). */
  inferenceMs: number;
}

export interface ClassifyOptions {
  /** Also fetch `attentions` and compute the rollout heatmap (default true). */
  heatmap?: boolean;
  /** Decision threshold on P(positive) (default: the model card's, else 0.5). */
  threshold?: number;
}
