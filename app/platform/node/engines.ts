/**
 * The engines of the Node CLIs (`npm run generate`, `npm run segment-eval`), created here so that no file under
 * app/cli creates an engine or imports onnxruntime-web: each engine is the same app/lib/<family>/engine.ts the
 * browser's workers expose, on onnxruntime-web's Node build (WASM) with files read from a models folder.
 * Model files are verified (size + sha256, nodeModelFiles) by the inference service before any session is made.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClassifierEngine } from '../../lib/classifier/engine';
import { createSdEngine, type SdEngine } from '../../lib/sd/engine';
import type { GenerateHost } from '../../lib/sd/engine';
import { fileByRole } from '../../lib/models/manifest';
import type { ModelEntry } from '../../lib/models/manifest-types';
import { createSamEngine, type SamEngine } from '../../lib/sam/engine';
import { SamPipeline, samSettings, type TensorFactory } from '../../lib/sam/pipeline';
import { nodeOrtHost, type NodeOrtOptions } from './ort';

/** The generate engine's host in Node: the ORT host plus the machine's memory and an event-loop yield. */
export function nodeGenerateHost(modelsDir: string, threads: number): GenerateHost {
  return generateHost({ modelsDir, threads });
}

function generateHost(opts: NodeOrtOptions): GenerateHost {
  return {
    ...nodeOrtHost(opts),
    deviceMemoryGiB: Math.floor(os.totalmem() / 1024 ** 3),
    // a macrotask between UNet steps, so a cancel (or a signal handler) runs before the next step
    yieldToEventLoop: () => new Promise<void>((resolve) => setTimeout(resolve, 0)),
  };
}

/** Segment engine for `npm run segment-eval` (no embedding store: every image is encoded once per run). */
export function nodeSegmentEngines(opts: NodeOrtOptions): { sam: SamEngine } {
  return { sam: createSamEngine(nodeOrtHost(opts)) };
}

/** Generate engine (+ the classifier engine that scores the images) for `npm run generate`. */
export function nodeGenerateEngines(opts: NodeOrtOptions): { sd: SdEngine; classifier: ReturnType<typeof createClassifierEngine> } {
  return { sd: createSdEngine(generateHost(opts)) as SdEngine, classifier: createClassifierEngine(nodeOrtHost(opts)) };
}

/**
 * A bare SAM pipeline (encoder + decoder sessions of the fp32 variant, no engine, no cache) for benchmarks and the
 * export-scripts golden test, which time or compare the pipeline itself. Files are read as they are: the CLIs go
 * through the engine and the inference service instead (sha256-verified files, the plan's variant).
 */
export async function openSamPipeline(modelsDir: string, entry: ModelEntry, threads = 1): Promise<SamPipeline> {
  const host = nodeOrtHost({ modelsDir, threads });
  const ort = await host.ort();
  ort.env.wasm.numThreads = threads;
  const v = entry.variants.fp32 ?? Object.values(entry.variants)[0];
  if (!v) throw new Error(`${entry.id}: no variant`);
  const open = async (role: string) => {
    const f = fileByRole(v, role);
    if (!f) throw new Error(`${entry.id}: the manifest lists no ${role}`);
    return ort.InferenceSession.create(fs.readFileSync(path.join(modelsDir, f.path)), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  };
  const tensor: TensorFactory = (type, data, dims) => new ort.Tensor(type, data as Float32Array, dims as number[]);
  return new SamPipeline(tensor, await open('image_encoder'), await open('prompt_decoder'), samSettings(entry));
}
