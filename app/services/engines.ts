/**
 * The engines of every model family created in-process from an ORT host (the CLIs and Node tests; the app's engines
 * live in comlink workers, app/platform/browser/workers.ts). The one place outside workers/ that creates an engine,
 * so that `npm run label` and the other CLIs run models exactly as the app does: through InferenceService with the
 * sha256-verified model files and the planned variant (scripts/check-imports.mjs forbids app/cli and app/store from
 * creating engines or importing onnxruntime-web).
 */
import { createClassifierEngine, type ClassifierEngine } from '../lib/classifier/engine';
import { createClipEngine, type ClipEngine } from '../lib/clip/engine';
import type { OrtHost } from '../lib/runtime/sessions';

export interface InProcessEngines {
  classifier: ClassifierEngine;
  clip: ClipEngine;
}

/** The classifier and CLIP engines on `host` (created now; their sessions are created lazily on first use). */
export function inProcessEngines(host: OrtHost): InProcessEngines {
  return { classifier: createClassifierEngine(host), clip: createClipEngine(host) };
}
