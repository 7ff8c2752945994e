/**
 * CLIP worker (zero-shot labels, image embeddings): exposes the CLIP engine (app/lib/clip/engine.ts) through comlink
 * with the browser's ORT host, like classifier.worker.ts.
 */
import * as Comlink from 'comlink';
import { createClipEngine, type ClipEngine } from '../app/lib/clip/engine';
import { browserOrtHost } from '../app/platform/browser/ort';

const engine: ClipEngine = createClipEngine(browserOrtHost());
Comlink.expose(engine);
