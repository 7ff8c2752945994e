/**
 * SD worker (family `sd`): a thin comlink adapter over app/lib/sd's engine (SD sessions, LCM loop kept on the GPU
 * on WebGPU, per-step progress, cancel between steps, size check, fp16 NaN fallback). Model bytes come from the
 * model cache (browserOrtHost's reader).
 */
import * as Comlink from 'comlink';
import { createSdEngine } from '../app/lib/sd/engine';
import { browserOrtHost } from '../app/platform/browser/ort';

Comlink.expose(
  createSdEngine({
    ...browserOrtHost(),
    deviceMemoryGiB: (self.navigator as { deviceMemory?: number }).deviceMemory,
    // a macrotask between UNet steps: the cancel message is delivered before the next step starts
    yieldToEventLoop: () => new Promise((resolve) => setTimeout(resolve, 0)),
  }),
);
