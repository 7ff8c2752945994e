/**
 * Classifier worker (pneumonia-vit and other 'classifier' models): exposes the classifier engine
 * (app/lib/classifier/engine.ts) through comlink, with the browser's ORT host (app/platform/browser/ort.ts): ORT from
 * /ort/, model bytes from the model cache. Sessions are created lazily on first use and kept until released.
 */
import * as Comlink from 'comlink';
import { createClassifierEngine, type ClassifierEngine } from '../app/lib/classifier/engine';
import { browserOrtHost } from '../app/platform/browser/ort';

const engine: ClassifierEngine = createClassifierEngine(browserOrtHost());
Comlink.expose(engine);
