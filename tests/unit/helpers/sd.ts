/**
 * Runs the app's TypeScript LCM pipeline (app/lib/sd) on an 'sd' model folder in Node with onnxruntime-web
 * (wasm), for the golden tests: the same code the worker and `npm run generate` run.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { LCMScheduler, encodePrompt, generateLatentConsistency, guidanceMode, lcmStepGraph, parseSdConfig, type GenerateResult } from '../../../app/lib/sd';
import { loadClipTokenizer } from '../../../app/lib/clip/tokenize';
import { nodeTransformers } from '../../../app/platform/node/ort';
import { fileByRole } from '../../../app/lib/models/manifest';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';

const sessions = new Map<string, Promise<ort.InferenceSession>>();
function session(file: string | Uint8Array, key: string): Promise<ort.InferenceSession> {
  if (!sessions.has(key)) sessions.set(key, ort.InferenceSession.create(typeof file === 'string' ? fs.readFileSync(file) : file, { executionProviders: ['wasm'] }));
  return sessions.get(key)!;
}

export interface SdRun {
  prompt: string;
  negativePrompt?: string;
  seed: number;
  steps: number;
  guidance: number;
  /** 'unet' / 'unet_lora' (two-graph) or 'unet_scaled' with loraScale. */
  unetRole: string;
  loraScale?: number | null;
  latents?: Float32Array;
  noises?: Float32Array[];
  viaStepGraph?: boolean;
}

export async function runSd(modelsDir: string, entry: ModelEntry, run: SdRun): Promise<GenerateResult & { inputIds: number[] }> {
  const v = entry.variants.fp32!;
  const file = (role: string) => {
    const f = fileByRole(v, role);
    if (!f) throw new Error(`${entry.id}: no ${role} file`);
    return path.join(modelsDir, f.path);
  };
  const cfg = parseSdConfig(entry.config, entry.id);
  const tok = loadClipTokenizer(await nodeTransformers(), fs.readFileSync(file('tokenizer'), 'utf8'), cfg);
  const scheduler = new LCMScheduler(JSON.parse(fs.readFileSync(file('scheduler_config'), 'utf8')));
  const te = await session(file('text_encoder'), file('text_encoder'));
  const unet = await session(file(run.unetRole), file(run.unetRole));
  const vae = await session(file('vae_decoder'), file('vae_decoder'));
  const cfgMode = guidanceMode(run.guidance, cfg.time_cond_proj_dim).kind === 'cfg';
  const graphOpts = { cfg: cfgMode, clip: scheduler.config.clip_sample };
  const stepSession = run.viaStepGraph ? await session(lcmStepGraph(graphOpts), `step|${JSON.stringify(graphOpts)}`) : undefined;
  const embeds = await encodePrompt(ort, tok, te, run.prompt, cfgMode, run.negativePrompt ?? '');
  const r = await generateLatentConsistency(
    ort,
    { scheduler, unet: { session: unet, loraScale: run.unetRole === 'unet_scaled' ? (run.loraScale ?? 0) : null }, vaeDecoder: vae, stepSession },
    cfg,
    embeds,
    { prompt: run.prompt, numInferenceSteps: run.steps, guidanceScale: run.guidance, seed: run.seed, latents: run.latents, noises: run.noises },
  );
  embeds.tensor.dispose();
  return { ...r, inputIds: Array.from(tok.encodeBatch([run.prompt]).ids, Number) };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}
