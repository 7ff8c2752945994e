/** What a worker reports about each loaded model; rendered by the runtime panel. */
import type { Dtype } from '../models/manifest-types';
import type { Backend, GpuFacts } from './execution-plan';
import type { WebGpuEngine } from './webgpu-engine';

export interface RuntimeReport {
  modelId: string;
  /** The backend the session actually runs on (after any fallback). */
  backend: Backend;
  dtype: Dtype;
  numThreads: number;
  /** The onnxruntime-web build the worker loaded (webgpu-engine.ts); absent in Node. */
  engine?: WebGpuEngine;
  /** That build for people, e.g. 'native WebGPU EP (ort.webgpu.min.mjs)'. */
  ortBuild?: string;
  gpu: GpuFacts;
  reasons: string[];
  /** True when WebGPU was planned but session creation failed and WASM took over. */
  fellBack: boolean;
  sessionCreateMs: number;
  lastInferenceMs?: number;
  crossOriginIsolated: boolean;
}
