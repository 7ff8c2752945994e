/**
 * Generate worker: a thin comlink adapter over app/lib/generate's engine (SD sessions, LCM loop kept on the GPU
 * on WebGPU, per-step progress, cancel between steps, size check, fp16 NaN fallback). Model bytes come from the
 * model cache (see modelCacheReader in ort-runtime.ts).
 */
import * as Comlink from 'comlink';
import { createGenerateEngine } from '../app/lib/generate/engine';
import type { ModelFile } from '../app/lib/models/manifest-types';
import { gpuFacts, loadOrt, modelCacheReader } from './ort-runtime';

const engine = createGenerateEngine({
  ort: loadOrt,
  gpu: gpuFacts,
  readFile: (req, file) => modelCacheReader(req.source)(file as ModelFile),
  crossOriginIsolated: self.crossOriginIsolated === true,
  hardwareConcurrency: self.navigator.hardwareConcurrency || 1,
  deviceMemoryGiB: (self.navigator as { deviceMemory?: number }).deviceMemory,
  yieldToEventLoop: () => new Promise((resolve) => setTimeout(resolve, 0)),
});

export type GenerateApi = typeof engine;
Comlink.expose(engine);
