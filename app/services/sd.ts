/**
 * The gallery run, written once for the app's generate slice (app/store/sd.ts) and `npm run generate`
 * (app/cli/generate.ts): the seeds (S..S+N-1), the sides (base / LoRA from the same initial latents), the guidance
 * default (the model's config.guidance_scale, else 1), one engine call per seed and side, each image PNG-encoded by the same
 * deterministic encoder everywhere (app/lib/sam/png.ts: fflate deflate level 6, filter 0), so the app and the CLI
 * write byte-identical files with the same sha256, and scored by a classifier when one is given, and the JSON record
 * that reproduces the run (app/lib/sd/record.ts). Free of React and the DOM: the engine call and the scorer
 * are injected (comlink worker in the app; in-process engine in Node).
 *
 * Errors: a failed engine Outcome ends the run with status 'error' (or 'cancelled' when the engine says so) and its
 * message; images of the seeds already done are kept. A scorer that throws is the caller's to report: here it only
 * leaves the images unscored.
 */
import type { ClassifierResult } from '../lib/classifier/types';
import type { ModelEntry } from '../lib/models/manifest-types';
import { positiveIndex } from '../lib/classifier/postprocess';
import { sha256Hex } from '../lib/models/hashing';
import { encodePng } from '../lib/imaging/png-encode';
import type { ModelRequest, Outcome } from '../lib/runtime/outcome';
import { generationRecord, type GenerationRecord, type ImageScore, type RecordImage } from '../lib/sd/record';
import type { Side, UnetLayout } from '../lib/sd/pipeline';
import type { GenerateEvent, GenerateParams, GenerateReport, GeneratedImage } from '../lib/sd/types';

export type SideChoice = 'base' | 'lora' | 'both';

/** What the user asks for: one prompt, numSeeds consecutive seeds, the sides. */
export interface GalleryRequest {
  prompt: string;
  negativePrompt?: string;
  /** First seed (torch.Generator('cpu').manual_seed(seed)). */
  seed: number;
  numSeeds: number;
  steps: number;
  /** diffusers' guidance_scale; undefined: the model's default (galleryGuidance). */
  guidance?: number;
  side?: SideChoice;
}

/** The request with every default resolved for one model: what runs and what the record says. */
export interface GalleryPlan {
  prompt: string;
  negativePrompt: string;
  seeds: number[];
  steps: number;
  guidance: number;
  sides: Side[];
  /** Said to the user when the sides differ from the request (a model without LoRA runs base only). */
  note?: string;
}

/** The model's default guidance: its config's guidance_scale (1 = no guidance when absent). */
export function defaultGuidance(entry: ModelEntry): number {
  const g = (entry.config as { guidance_scale?: unknown } | undefined)?.guidance_scale;
  return typeof g === 'number' && Number.isFinite(g) ? g : 1;
}

/**
 * Resolve a request for a loaded model (hasLora from its report). Throws when 'lora' is asked of a model without a
 * LoRA UNet; 'both' on such a model runs base only, with a note.
 */
export function planGallery(entry: ModelEntry, hasLora: boolean, r: GalleryRequest): GalleryPlan {
  const side = r.side ?? 'both';
  if (side === 'lora' && !hasLora) throw new Error(`${entry.id} has no LoRA UNet`);
  const sides: Side[] = side === 'both' ? (hasLora ? ['base', 'lora'] : ['base']) : [side];
  return {
    prompt: r.prompt,
    negativePrompt: r.negativePrompt ?? '',
    seeds: Array.from({ length: r.numSeeds }, (_, i) => r.seed + i),
    steps: r.steps,
    guidance: r.guidance ?? defaultGuidance(entry),
    sides,
    note: side === 'both' && !hasLora ? `${entry.id} has no LoRA UNet: base only` : undefined,
  };
}

/** The file name of one generated image (the CLI writes it; the gallery's record names it the same way). */
export function generatedFileName(modelId: string, seed: number, side: Side): string {
  return `${modelId}_s${seed}_${side}.png`;
}

/** Classifier results of generated images → their scores (P of the positive label, PNEUMONIA when present). */
export function scoresFrom(classifier: ModelEntry, results: ClassifierResult[]): ImageScore[] {
  return results.map((r) => ({
    classifierId: classifier.id,
    classifierWeights: classifier.weights,
    label: r.predicted,
    positiveProbability: r.positiveProbability ?? r.probabilities[positiveIndex(r.labels)],
  }));
}

export interface GalleryImageResult extends RecordImage {
  file: string;
  sha256: string;
  png: Uint8Array;
  rgba: Uint8ClampedArray;
}

export interface GalleryDeps {
  /** The generate engine's generate (worker proxy or in-process). */
  generate(req: ModelRequest, p: GenerateParams, onEvent?: (e: GenerateEvent) => void): Promise<Outcome<{ images: GeneratedImage[]; report: GenerateReport }>>;
  /** Scores of one seed's images, in order (undefined: not scored). */
  score?(images: { width: number; height: number; data: Uint8ClampedArray }[]): Promise<(ImageScore | undefined)[]>;
  /** Checked before each seed: true stops the run ('cancelled'). */
  cancelRequested?(): boolean;
}

export interface GalleryOutcome {
  status: 'done' | 'cancelled' | 'error';
  message?: string;
  seeds: number[];
  images: GalleryImageResult[];
  report?: GenerateReport;
}

/**
 * Run a planned gallery: for each seed, one engine call per side (every side of a seed starts from the same
 * initial latents: torch.Generator(seed), so this equals one call for all sides), each image encoded and hashed as
 * soon as it exists and handed to `onImage` (the gallery shows it before the next side runs: the first image is
 * seen after one side's steps, issue 21.1), then the seed's images scored together. `onSeed` gets each finished
 * seed's scored images (the app saves the run as it progresses).
 */
export async function runGallery(
  deps: GalleryDeps,
  req: ModelRequest,
  plan: GalleryPlan,
  hooks: {
    onEvent?(e: GenerateEvent): void;
    /** One image, unscored, as soon as it is made. */
    onImage?(seed: number, image: GalleryImageResult, report: GenerateReport): void | Promise<void>;
    onSeed?(seed: number, images: GalleryImageResult[], report: GenerateReport): void | Promise<void>;
  } = {},
): Promise<GalleryOutcome> {
  const out: GalleryOutcome = { status: 'done', seeds: [], images: [] };
  for (const seed of plan.seeds) {
    const imgs: GalleryImageResult[] = [];
    for (const side of plan.sides) {
      if (deps.cancelRequested?.()) return { ...out, status: 'cancelled', message: `Cancelled: before seed ${seed}${imgs.length ? ` (${side} side)` : ''}` };
      const r = await deps.generate(req, { prompt: plan.prompt, negativePrompt: plan.negativePrompt, steps: plan.steps, guidanceScale: plan.guidance, seed, sides: [side] }, hooks.onEvent);
      if (!r.ok) return { ...out, status: r.message.startsWith('Cancelled') ? 'cancelled' : 'error', message: r.message };
      out.report = r.value.report;
      for (const im of r.value.images) {
        const png = encodePng(im.rgba, im.width, im.height, 4);
        const img: GalleryImageResult = {
          side: im.side,
          seed,
          file: generatedFileName(req.entry.id, seed, im.side),
          width: im.width,
          height: im.height,
          sha256: await sha256Hex(png),
          timesteps: im.timesteps,
          stepMs: im.stepMs.map((x) => Math.round(x * 10) / 10),
          totalMs: Math.round(im.totalMs),
          png,
          rgba: im.rgba,
        };
        imgs.push(img);
        await hooks.onImage?.(seed, img, r.value.report);
      }
    }
    const scores = deps.score ? await deps.score(imgs.map((i) => ({ width: i.width, height: i.height, data: i.rgba }))) : [];
    const scored = imgs.map((im, k) => (scores[k] ? { ...im, score: scores[k] } : im));
    out.seeds.push(seed);
    out.images.push(...scored);
    await hooks.onSeed?.(seed, scored, out.report!);
  }
  return out;
}

/** The JSON record of a gallery run (the same for the gallery's export and `npm run generate`). */
export function galleryRecord(a: {
  entry: ModelEntry;
  model: { dtype: string; layout: UnetLayout; backend: string };
  plan: Pick<GalleryPlan, 'prompt' | 'negativePrompt' | 'steps' | 'guidance' | 'sides'>;
  seeds: number[];
  images: RecordImage[];
  created?: Date;
}): GenerationRecord {
  return generationRecord({
    entry: a.entry,
    dtype: a.model.dtype,
    layout: a.model.layout,
    backend: a.model.backend,
    prompt: a.plan.prompt,
    negativePrompt: a.plan.negativePrompt,
    seeds: a.seeds,
    steps: a.plan.steps,
    guidanceScale: a.plan.guidance,
    sides: a.plan.sides,
    created: a.created,
    // the record keeps what reproduces and identifies an image, not its pixels
    images: a.images.map((i) => ({
      side: i.side,
      seed: i.seed,
      ...(i.file ? { file: i.file } : {}),
      width: i.width,
      height: i.height,
      ...(i.sha256 ? { sha256: i.sha256 } : {}),
      timesteps: i.timesteps,
      stepMs: i.stepMs,
      totalMs: i.totalMs,
      ...(i.score ? { score: i.score } : {}),
    })),
  });
}
