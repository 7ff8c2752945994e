/** What the classifier engine (engine.ts, run in workers/classifier.worker.ts and the CLI) returns. */

/** The heatmap methods the app offers (postprocess.ts attentionRollout, occlusion.ts occlusionSensitivity). */
export type HeatmapMethod = 'attention-rollout' | 'occlusion';

export interface Heatmap {
  /** Patch grid size (e.g. 14×14 for a ViT-B/16 at 224). */
  width: number;
  height: number;
  /**
   * Relevance per grid cell, normalised to [0, 1], row-major: attention rollout (Abnar & Zuidema 2020) or the drop of
   * the predicted class's probability when the cell is occluded (Zeiler & Fergus 2014), by `method`.
   */
  data: Float32Array;
  method: HeatmapMethod;
}

/** The out-of-distribution verdict of one image (ood.ts): shown as a badge next to the result. */
export interface OodVerdict {
  /** Mahalanobis distance of the attention features to the nearest training class (unitless). */
  score: number;
  threshold: number;
  /** score > threshold: outside what the model was trained on. */
  ood: boolean;
  /** What the badge says, from the model's ood.json. */
  badge: string;
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
  /** The attention-rollout heatmap (when asked for and the graph outputs attentions). */
  heatmap?: Heatmap;
  /** Present when the model variant ships OOD statistics (manifest file role 'ood'). */
  ood?: OodVerdict;
  /** Inference time per image in ms (the batch's time divided by its size). */
  inferenceMs: number;
  /**
   * What the result was computed for, when the app files it under an image: image, frame, model and variant
   * (app/store/selectors.ts resultKey). A view shows it only while that key is the current one.
   */
  key?: string;
}

export interface OcclusionRequestOptions {
  /** Occluding square in model-input pixels (default: the ViT patch size from the manifest config, else H/7). */
  window?: number;
  stride?: number;
  /** Class watched (default: the predicted class of the unoccluded image). */
  targetClass?: number;
}

/** An occlusion-sensitivity heatmap of one image (occlusion.ts). */
export interface OcclusionHeatmap extends Heatmap {
  method: 'occlusion';
  targetClass: number;
  targetLabel: string;
  /** p_target of the unoccluded image. */
  baseProbability: number;
  /** Forward passes made, and the time they took. */
  runs: number;
  ms: number;
  /** As ClassifierResult.key. */
  key?: string;
}

export interface ClassifyOptions {
  /** Also fetch `attentions` and compute the rollout heatmap (default true). */
  heatmap?: boolean;
  /** Decision threshold on P(positive) (default: the model card's, else 0.5). */
  threshold?: number;
}
