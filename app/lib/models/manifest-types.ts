/**
 * The contract between export-scripts (which writes public/models/manifest.json) and the app (which reads it).
 * export-scripts/cxr_export/manifest.py writes exactly this shape; keep the two in step.
 */

export type ModelFamily = 'classifier' | 'clip' | 'sam' | 'sd';
export type Dtype = 'fp32' | 'fp16' | 'int8';
/**
 * 'trained': real weights with a card of measured metrics. 'random-fixture': random weights, for tests and plumbing
 * only. 'external': a model added from the Hub by the user (app/lib/hub), never in a manifest; its weights are not
 * checked by this project.
 */
export type WeightsKind = 'trained' | 'random-fixture' | 'pretrained' | 'external';

export interface ModelFile {
  /** What the file is for, e.g. 'model', 'image_encoder', 'text_encoder', 'tokenizer', 'prompt_decoder', 'unet', 'unet_lora', 'vae_decoder', 'scheduler_config'. */
  role: string;
  /** Path relative to the model source root (public/models/ by default), e.g. 'pneumonia-vit/model.onnx'. */
  path: string;
  bytes: number;
  sha256: string;
  /** ONNX external-data file that belongs to this graph, when the graph is over 2 GB. */
  external_data?: { path: string; bytes: number; sha256: string }[];
}

export interface ModelVariant {
  dtype: Dtype;
  files: ModelFile[];
  /** ONNX Runtime vs PyTorch on the same input, measured by export-scripts when this variant was written. */
  parity?: { max_abs_diff: number; reference: string; checked_at: string };
  /**
   * int8 only: how activations are quantized. 'dynamic' (onnxruntime quantize_dynamic: DynamicQuantizeLinear takes
   * one scale over the whole input tensor, batch included) makes an image's output depend on its batch mates, so
   * engines run such a graph one image at a time; 'static' (QDQ with calibrated scales) is batch-independent.
   * Absent on an int8 variant = 'dynamic' (what published *_quantized.onnx files are).
   */
  activation_quantization?: 'dynamic' | 'static';
}


export interface Preprocessing {
  /** [height, width] the image is resized to. */
  size: [number, number];
  resize: 'bilinear' | 'bicubic';
  /** Per-channel mean and std applied after scaling pixels to [0, 1]. */
  mean: [number, number, number];
  std: [number, number, number];
  /** Channels order of the input tensor; always NCHW RGB for now. */
  layout: 'NCHW';
}

export interface ModelCard {
  summary: string;
  /** Metrics measured on a named dataset split, e.g. { dataset: 'kermany-cxr-224 test (624)', accuracy: 0.9, ... }. */
  metrics?: Record<string, number | string>;
  threshold?: number;
  training?: Record<string, unknown>;
  intended_use?: string;
  limitations?: string;
}

export interface ModelEntry {
  id: string;
  name: string;
  family: ModelFamily;
  task: string;
  weights: WeightsKind;
  license: string;
  source: string;
  variants: Partial<Record<Dtype, ModelVariant>>;
  preprocessing?: Preprocessing;
  labels?: string[];
  /** Input/output tensor names of each graph, keyed by file role. */
  io?: Record<string, { inputs: string[]; outputs: string[] }>;
  /** Family-specific settings: CLIP logit_scale and context_length, SAM image size, SD latent size, etc. */
  config?: Record<string, unknown>;
  card: ModelCard;
}

export interface Manifest {
  version: 1;
  models: ModelEntry[];
}
