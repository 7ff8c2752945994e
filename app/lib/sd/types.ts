/** Types the generate engine (worker) takes and returns. */
import type { RuntimeReport } from '../runtime';
import type { ModelRequest } from '../runtime/outcome';
import type { Side, UnetLayout } from './pipeline';
import type { FitReport } from './fit';

/** The model to generate with (the request every engine takes). */
export type GenerateModelRequest = ModelRequest;

export interface GenerateParams {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  guidanceScale: number;
  seed: number;
  sides: Side[];
  /** Also return the float32 image [1, 3, H, W] in [0, 1] (parity tests). */
  returnImage?: boolean;
}

export interface GeneratedImage {
  side: Side;
  seed: number;
  width: number;
  height: number;
  /** RGBA, width·height·4. */
  rgba: Uint8ClampedArray;
  /** float32 [1, 3, H, W] in [0, 1], when asked for (GenerateParams.returnImage) */
  image?: Float32Array;
  backend?: string;
  timesteps: number[];
  stepMs: number[];
  vaeMs: number;
  totalMs: number;
}

export interface GenerateReport extends RuntimeReport {
  layout: UnetLayout;
  hasLora: boolean;
  fit: FitReport;
  /** the UNet step stays on the GPU (gpu-buffer outputs fed back) */
  gpuResident: boolean;
}

export type GenerateEvent =
  | { kind: 'stage'; message: string }
  | { kind: 'step'; side: Side; seed: number; step: number; total: number; ms: number };
