/**
 * Node's OrtHost for `npm run label` (and Node tests): onnxruntime-web's Node build on the WASM backend, model files
 * read from a models folder laid out like public/models (paths relative to its manifest.json).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import type { Dtype, ModelEntry } from '../../lib/models/manifest-types';
import type { ModelSource } from '../../lib/models/sources';
import { modelPlanFacts, NO_GPU, type ExecutionInputs } from '../../lib/runtime';
import type { Ort, OrtHost } from '../../lib/runtime/sessions';
import { loadTransformers, type Transformers } from '../../lib/runtime/transformers';
import { hubDirFor } from './hub-files';

/** transformers.js on the CLIs' one ORT (onnxruntime-web's Node build; never onnxruntime-node). */
export function nodeTransformers(): Promise<Transformers> {
  return loadTransformers(ort as unknown as Ort);
}

export interface NodeOrtOptions {
  /** Folder holding manifest.json and the model folders. */
  modelsDir: string;
  /** WASM threads (the ORT Node build runs them as worker_threads). */
  threads: number;
  /** Run this dtype where the model has it (else the plan's choice among the others). */
  preferDtype?: Dtype;
}

/** The plan inputs in Node: no WebGPU, `threads` WASM threads, the preferred dtype when the model offers it. */
export function nodePlanInputs(opts: NodeOrtOptions): (entry: ModelEntry) => Promise<ExecutionInputs> {
  return async (entry) => {
    const facts = modelPlanFacts(entry);
    const prefer = opts.preferDtype;
    return {
      gpu: { ...NO_GPU, unavailableReason: 'Node: WASM only' },
      // Node's ORT starts its WASM threads without SharedArrayBuffer restrictions.
      crossOriginIsolated: true,
      hardwareConcurrency: opts.threads,
      override: 'wasm',
      largestFileBytes: facts.largestFileBytes,
      availableDtypes: prefer && facts.availableDtypes.includes(prefer) ? [prefer] : facts.availableDtypes,
    };
  };
}

export function nodeOrtHost(opts: NodeOrtOptions): OrtHost {
  const instance = ort as unknown as Ort;
  instance.env.logLevel = 'error';
  // Hub models' files live in the Hub cache (hub-files.ts), every other model's in the models folder.
  const rootOf = (source?: ModelSource) => (source && hubDirFor(source)) || opts.modelsDir;
  return {
    ort: async () => instance,
    planInputs: nodePlanInputs(opts),
    numThreads: opts.threads,
    downloadedDtypes: async (entry, source) =>
      Object.entries(entry.variants)
        .filter(([, v]) => v?.files.length && v.files.flatMap((f) => [f, ...(f.external_data ?? [])]).every((f) => fs.existsSync(path.join(rootOf(source), f.path))))
        .map(([d]) => d as Dtype),
    reader: (source) => async (file) => {
      const p = path.join(rootOf(source), file.path);
      if (!fs.existsSync(p)) throw new Error(`Model file missing: ${p}`);
      const buf = fs.readFileSync(p);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    },
  };
}
