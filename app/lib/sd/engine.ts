/**
 * The generate engine: owns the SD sessions of one model (lazily created, one set at a time) and runs
 * pipeline.ts for the gallery, the CLI and the tests. Runtime-agnostic: ONNX Runtime, file reading and the device
 * facts are injected (browser worker: workers/sd.worker.ts; Node: app/platform/node/engines.ts).
 *
 * On WebGPU the text encoder, the UNet and the step graph write 'gpu-buffer' outputs that feed the next session, so
 * nothing is read back between UNet steps; the VAE decoder's image is the only read-back. fp16 variants are used
 * only with shader-f16 (execution-plan.ts) and their first UNet step is checked for NaN/Inf: if any, the model is
 * reloaded in fp32 and the message says why.
 */
import type * as Ort from 'onnxruntime-web';
import type { ModelEntry, ModelVariant } from '../models/manifest-types';
import { planExecution, fallbackToWasm, type ExecutionInputs, type ExecutionPlan } from '../runtime';
import { RunQueue } from '../runtime/run-queue';
import type { OrtHost } from '../runtime/sessions';
import { errorMessage, type FamilyEngine, type Outcome, type Progress } from '../runtime/outcome';
import { loadClipTokenizer, type ClipTokenizer } from '../clip/tokenize';
import { loadTransformers } from '../runtime/transformers';
import { LCMScheduler } from './lcm-scheduler';
import { guidanceMode } from './guidance';
import { lcmStepGraph } from './step-graph';
import { checkSdFit, chooseLayout, type FitReport } from './fit';
import { encodePrompt, generateLatentConsistency, imageToRgba, parseSdConfig, GenerationCancelled, type PromptEmbeds, type SdConfig, type Side, type UnetLayout } from './pipeline';
import type { GenerateEvent, GenerateModelRequest, GenerateParams, GenerateReport, GeneratedImage } from './types';

/** The platform's OrtHost (ORT, plan inputs, file reader) plus what generation needs on top. */
export interface GenerateHost extends OrtHost {
  /** navigator.deviceMemory (GiB) or the machine's memory, for the size check. */
  deviceMemoryGiB?: number;
  /** Resolve on the next macrotask (setTimeout 0): lets a cancel message in between UNet steps. */
  yieldToEventLoop?(): Promise<void>;
}

interface Loaded {
  key: string;
  entry: ModelEntry;
  config: SdConfig;
  plan: ExecutionPlan;
  variant: ModelVariant;
  layout: UnetLayout;
  hasLora: boolean;
  tokenizer: ClipTokenizer;
  schedulerConfig: unknown;
  textEncoder: Ort.InferenceSession;
  unets: Partial<Record<'unet' | 'unet_lora' | 'unet_scaled', Ort.InferenceSession>>;
  vaeDecoder: Ort.InferenceSession;
  steps: Map<string, Ort.InferenceSession>;
  report: GenerateReport;
  embeds: PromptEmbeds | null;
  nanChecked: boolean;
}

export class Fp16NaNError extends Error {
  constructor() {
    super('the fp16 UNet produced NaN/Inf on the first step');
    this.name = 'Fp16NaNError';
  }
}

function keyOf(req: GenerateModelRequest, forceFp32: boolean): string {
  return `${req.entry.id}|${req.override}|${JSON.stringify(req.source)}|${forceFp32}`;
}

export function createSdEngine(host: GenerateHost) {
  let current: Promise<Loaded> | null = null;
  let currentKey = '';
  let cancelled = false;
  let threadsSet = false;
  // One call at a time: a generation, a load (which may release another model's sessions) and a release run in
  // order, so sessions are never released under a running generation and WebGPU never sees two runs of a session
  // at once ("Session already started"). cancel() is not queued: it stops the running generation between steps.
  const queue = new RunQueue();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => queue.run(fn);

  async function release(): Promise<void> {
    const p = current;
    current = null;
    currentKey = '';
    if (!p) return;
    const l = await p.catch(() => null);
    if (!l) return;
    l.embeds?.tensor.dispose();
    await Promise.all([l.textEncoder, l.vaeDecoder, ...Object.values(l.unets), ...l.steps.values()].map((s) => s!.release().catch(() => undefined)));
  }

  async function create(req: GenerateModelRequest, forceFp32: boolean, onEvent?: (e: GenerateEvent) => void): Promise<Loaded> {
    const ort = await host.ort();
    const planned = await host.planInputs(req.entry, req.override);
    const inputs: ExecutionInputs = {
      ...planned,
      availableDtypes: forceFp32 ? planned.availableDtypes.filter((d) => d !== 'fp16') : planned.availableDtypes,
    };
    const gpu = inputs.gpu;
    const readFile = host.reader(req.source);
    let plan = planExecution(inputs);
    if (host.numThreads) plan = { ...plan, numThreads: host.numThreads };
    if (!threadsSet) {
      ort.env.wasm.numThreads = plan.numThreads;
      threadsSet = true;
    }
    const config = parseSdConfig(req.entry.config, req.entry.name);
    const attempt = async (p: ExecutionPlan) => {
      const variant = req.entry.variants[p.dtype];
      if (!variant) throw new Error(`${req.entry.name}: no ${p.dtype} variant`);
      const { layout, hasLora } = chooseLayout(req.entry, variant);
      const fit = checkSdFit({ entry: req.entry, variant, layout, backend: p.backend, gpu, deviceMemoryGiB: host.deviceMemoryGiB, unetBatch: config.time_cond_proj_dim ? 1 : 2 });
      if (!fit.ok) throw new ModelTooLarge(fit);
      const gpuOut = p.backend === 'webgpu';
      const make = async (role: string, outputOnGpu: boolean): Promise<Ort.InferenceSession> => {
        const file = variant.files.find((f) => f.role === role);
        if (!file) throw new Error(`${req.entry.name} (${p.dtype}): the manifest lists no '${role}' file`);
        onEvent?.({ kind: 'stage', message: `reading ${file.path}` });
        const bytes = await readFile(file);
        const externalData = [];
        for (const ext of file.external_data ?? []) externalData.push({ path: ext.path.split('/').pop()!, data: await readFile({ ...ext, role: `${role}-data` }) });
        onEvent?.({ kind: 'stage', message: `creating ${role} session on ${p.backend}` });
        return ort.InferenceSession.create(bytes, {
          executionProviders: [p.backend],
          graphOptimizationLevel: 'all',
          ...(externalData.length ? { externalData } : {}),
          ...(outputOnGpu && gpuOut ? { preferredOutputLocation: 'gpu-buffer' as const } : {}),
        });
      };
      const made: Ort.InferenceSession[] = [];
      try {
        const textEncoder = await make('text_encoder', true);
        made.push(textEncoder);
        const unets: Loaded['unets'] = {};
        for (const r of layout === 'scaled' ? (['unet_scaled'] as const) : hasLora ? (['unet', 'unet_lora'] as const) : (['unet'] as const)) {
          unets[r] = await make(r, true);
          made.push(unets[r]!);
        }
        const vaeDecoder = await make('vae_decoder', false);
        made.push(vaeDecoder);
        const tokFile = variant.files.find((f) => f.role === 'tokenizer');
        const schedFile = variant.files.find((f) => f.role === 'scheduler_config');
        if (!tokFile || !schedFile) throw new Error(`${req.entry.name}: the manifest lists no tokenizer / scheduler_config file`);
        const td = new TextDecoderLite();
        const tokenizer = loadClipTokenizer(await loadTransformers(ort), td.decode(await readFile(tokFile)), config);
        const schedulerConfig = JSON.parse(td.decode(await readFile(schedFile)));
        new LCMScheduler(schedulerConfig); // validate now, not at the first generation
        return { variant, layout, hasLora, fit, textEncoder, unets, vaeDecoder, tokenizer, schedulerConfig };
      } catch (e) {
        await Promise.all(made.map((s) => s.release().catch(() => undefined)));
        throw e;
      }
    };
    const t0 = nowMs();
    let fellBack = false;
    let parts: Awaited<ReturnType<typeof attempt>>;
    try {
      parts = await attempt(plan);
    } catch (e) {
      if (plan.backend !== 'webgpu' || e instanceof ModelTooLarge) throw e;
      plan = fallbackToWasm(plan, e, inputs);
      fellBack = true;
      onEvent?.({ kind: 'stage', message: 'WebGPU failed; creating WASM sessions' });
      parts = await attempt(plan);
    }
    const report: GenerateReport = {
      modelId: req.entry.id,
      backend: plan.backend,
      dtype: plan.dtype,
      numThreads: plan.numThreads,
      gpu,
      reasons: [...plan.reasons, ...(parts.layout === 'scaled' ? ['one UNet for both sides (lora_scale input)'] : [])],
      fellBack,
      sessionCreateMs: Math.round(nowMs() - t0),
      crossOriginIsolated: inputs.crossOriginIsolated,
      layout: parts.layout,
      hasLora: parts.hasLora,
      fit: parts.fit,
      gpuResident: plan.backend === 'webgpu',
    };
    return { key: '', entry: req.entry, config, plan, ...parts, steps: new Map(), report, embeds: null, nanChecked: plan.dtype !== 'fp16' };
  }

  async function get(req: GenerateModelRequest, forceFp32 = false, onEvent?: (e: GenerateEvent) => void): Promise<Loaded> {
    const key = keyOf(req, forceFp32);
    if (current && (currentKey === key || currentKey === keyOf(req, true))) return current;
    await release();
    currentKey = key;
    current = create(req, forceFp32, onEvent).then((l) => ({ ...l, key }));
    current.catch(() => {
      if (currentKey === key) {
        current = null;
        currentKey = '';
      }
    });
    return current;
  }

  async function stepSession(l: Loaded, cfg: boolean, clip: boolean): Promise<Ort.InferenceSession | undefined> {
    if (!l.report.gpuResident) return undefined;
    const k = `${cfg}|${clip}`;
    let s = l.steps.get(k);
    if (!s) {
      const ort = await host.ort();
      s = await ort.InferenceSession.create(lcmStepGraph({ cfg, clip }), { executionProviders: [l.plan.backend], preferredOutputLocation: 'gpu-buffer' });
      l.steps.set(k, s);
    }
    return s;
  }

  async function runOne(l: Loaded, p: GenerateParams, side: Side, onEvent?: (e: GenerateEvent) => void): Promise<GeneratedImage> {
    const ort = await host.ort();
    const mode = guidanceMode(p.guidanceScale, l.config.time_cond_proj_dim);
    const cfg = mode.kind === 'cfg';
    const textKey = JSON.stringify([p.prompt, cfg ? (p.negativePrompt ?? '') : null]);
    if (!l.embeds || l.embeds.key !== textKey) {
      l.embeds?.tensor.dispose();
      l.embeds = null;
      l.embeds = await encodePrompt(ort, l.tokenizer, l.textEncoder, p.prompt, cfg, p.negativePrompt ?? '');
    }
    if (side === 'lora' && !l.hasLora) throw new Error(`${l.entry.name} has no LoRA UNet (unet_lora or unet_scaled)`);
    const unet =
      l.layout === 'scaled'
        ? { session: l.unets.unet_scaled!, loraScale: side === 'lora' ? 1 : 0 }
        : { session: side === 'lora' ? l.unets.unet_lora! : l.unets.unet!, loraScale: null };
    const scheduler = new LCMScheduler(l.schedulerConfig);
    const step = await stepSession(l, cfg, scheduler.config.clip_sample);
    const r = await generateLatentConsistency(ort, { scheduler, unet, vaeDecoder: l.vaeDecoder, stepSession: step }, l.config, l.embeds, {
      prompt: p.prompt,
      negativePrompt: p.negativePrompt,
      numInferenceSteps: p.steps,
      guidanceScale: p.guidanceScale,
      seed: p.seed,
    }, {
      beforeStep: host.yieldToEventLoop,
      isCancelled: () => cancelled,
      onStep: (s) => onEvent?.({ kind: 'step', side, seed: p.seed, step: s.step, total: s.total, ms: s.ms }),
      checkFirstStep: l.nanChecked
        ? undefined
        : (d) => {
            for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) throw new Fp16NaNError();
            l.nanChecked = true;
          },
    });
    l.report.lastInferenceMs = Math.round(r.timings.totalMs);
    return { side, seed: p.seed, width: r.width, height: r.height, rgba: imageToRgba(r.image, r.width, r.height), ...(p.returnImage ? { image: r.image } : {}), backend: l.plan.backend, timesteps: r.timesteps, stepMs: r.timings.stepMs, vaeMs: r.timings.vaeMs, totalMs: r.timings.totalMs };
  }

  return {
    /** Create (or reuse) the sessions; returns what runs where, the layout and the memory budget. */
    load(req: GenerateModelRequest, onProgress?: Progress): Promise<Outcome<GenerateReport>> {
      return serial(async () => {
        try {
          const l = await get(req, false, onProgress && ((e) => e.kind === 'stage' && onProgress(e.message)));
          return { ok: true, value: { ...l.report } };
        } catch (e) {
          return { ok: false, message: `Could not load ${req.entry.name}: ${errorMessage(e)}` };
        }
      });
    },

    /** One seed, the requested sides, from the same initial latents (same seed). Cancellable between steps. */
    generate(req: GenerateModelRequest, p: GenerateParams, onEvent?: (e: GenerateEvent) => void): Promise<Outcome<{ images: GeneratedImage[]; report: GenerateReport }>> {
      return serial(async () => {
        cancelled = false;
        try {
          let l = await get(req, false, onEvent);
          const images: GeneratedImage[] = [];
          for (const side of p.sides) {
            try {
              images.push(await runOne(l, p, side, onEvent));
            } catch (e) {
              if (!(e instanceof Fp16NaNError)) throw e;
              onEvent?.({ kind: 'stage', message: 'fp16 UNet gave NaN on the first step: reloading in fp32' });
              await release();
              l = await get(req, true, onEvent);
              l.report.reasons.push('the fp16 variant produced NaN/Inf on the first UNet step: switched to fp32');
              images.push(await runOne(l, p, side, onEvent));
            }
          }
          return { ok: true, value: { images, report: { ...l.report } } };
        } catch (e) {
          if (e instanceof GenerationCancelled) return { ok: false, message: `Cancelled: ${e.message}` };
          return { ok: false, message: `Generation failed: ${errorMessage(e)}` };
        }
      });
    },

    /** Stop the running generation before its next UNet step. */
    async cancel(): Promise<void> {
      cancelled = true;
    },

    /** Release this model's sessions once the calls queued before have ended. */
    release(modelId?: string): Promise<void> {
      return serial(async () => {
        if (!modelId || currentKey.startsWith(`${modelId}|`)) await release();
      });
    },

    reset(): Promise<void> {
      return serial(release);
    },
  };
}

export type SdEngine = ReturnType<typeof createSdEngine> & FamilyEngine;

export class ModelTooLarge extends Error {
  readonly fit: FitReport;
  constructor(fit: FitReport) {
    super(fit.message);
    this.name = 'ModelTooLarge';
    this.fit = fit;
  }
}

function nowMs(): number {
  return globalThis.performance?.now() ?? Date.now();
}

/** tokenizer.json / scheduler_config.json bytes -> text. */
class TextDecoderLite {
  decode(b: Uint8Array): string {
    return new TextDecoder().decode(b);
  }
}
