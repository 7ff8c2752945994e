/**
 * Stands in for `onnxruntime-web/webgpu` and `onnxruntime-common` inside @huggingface/transformers' browser build
 * (aliased in vite.config.ts): both are the app's one ORT (/ort/ort.min.mjs), which app/lib/runtime/transformers.ts
 * puts on `globalThis[Symbol.for('onnxruntime')]` before it imports transformers.js. Without this alias Vite would
 * bundle a second ORT (and its wasm) into every worker that uses transformers.js.
 */
import type * as OrtModule from 'onnxruntime-web';

const ort = (globalThis as unknown as Record<symbol, typeof OrtModule | undefined>)[Symbol.for('onnxruntime')];
if (!ort) throw new Error('transformers.js was imported before the app set its ONNX Runtime (app/lib/runtime/transformers.ts loads it)');

export const Tensor = ort.Tensor;
export const InferenceSession = ort.InferenceSession;
export const env = ort.env;
export default ort;
