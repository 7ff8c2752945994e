/** What a worker reports about each loaded model; rendered by the runtime panel. */
import type { Dtype } from '../models/manifest-types';
import type { Backend, GpuFacts } from './execution-plan';

export interface RuntimeReport {
  modelId: string;
  /** The backend the session actually runs on (after any fallback). */
  backend: Backend;
  dtype: Dtype;
  numThreads: number;
  gpu: GpuFacts;
  reasons: string[];
  /** True when WebGPU was planned but session creation failed and WASM took over. */
  fellBack: boolean;
  sessionCreateMs: number;
  lastInferenceMs?: number;
  crossOriginIsolated: boolean;
}
