/**
 * What crosses a worker boundary: a request naming the model and where its files are, and an Outcome instead of a
 * thrown error (comlink keeps only the name and message of a thrown Error, and a rejected call would be an unhandled
 * rejection on the page when nobody awaits it). The inference service (app/services/inference.ts) turns a failed
 * Outcome back into a thrown Error with the same message.
 */
import type { ModelEntry } from '../models/manifest-types';
import type { ModelSource } from '../models/sources';
import type { BackendOverride } from './execution-plan';
import type { RuntimeReport } from './report';

export type Outcome<T> = { ok: true; value: T } | { ok: false; message: string };

/** One model, the user's backend setting, and the source its files came from (their cache keys derive from it). */
export interface ModelRequest {
  entry: ModelEntry;
  override: BackendOverride;
  /** Local folders: without their blobs (the worker reads the model cache, not the folder). */
  source: ModelSource;
}

/** A human-readable progress line ("reading model.onnx", "creating image_encoder session on wasm"). */
export type Progress = (message: string) => void;

/** A batch of results with the runtime report of the session(s) that produced them. */
export interface Batch<R> {
  results: R[];
  report: RuntimeReport;
}

/**
 * The API every model family's engine offers (app/lib/<family>/engine.ts); a worker exposes exactly this through
 * comlink, the CLI calls it in-process. Family verbs (classify, zeroShot, segment, generate, ...) come on top.
 */
export interface FamilyEngine {
  /** Create (or reuse) the sessions of the model; the report says what runs where and why. */
  load(req: ModelRequest, onProgress?: Progress): Promise<Outcome<RuntimeReport>>;
  /** Release every session of this model id (the user switched to another model of the family). */
  release(modelId: string): Promise<void>;
  /** Release every session (backend setting changed, a model was deleted). */
  reset(): Promise<void>;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'number') return `ONNX Runtime error code ${e}`;
  return String(e);
}

/** Run fn and report its failure as an Outcome whose message starts with `what` (e.g. 'Classification failed'). */
export async function outcome<T>(what: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return { ok: false, message: `${what}: ${errorMessage(e)}` };
  }
}

/** The value of an Outcome, or an Error with its message. */
export function unwrap<T>(o: Outcome<T>): T {
  if (!o.ok) throw new Error(o.message);
  return o.value;
}
